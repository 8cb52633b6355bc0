"""Seconds per training epoch of the CNN: the paper's grid (876 images of 71 x 90 x 72) and the demo grids.

Usage: python bench/bench_train.py [--threads 2] [--paper-steps 2] [--skip-paper]

* paper grid, CPU: a few optimiser steps (batch 8, Adam, cross-entropy, NDHWC
  memory as in ``train_model``) after one warm-up step, EXTRAPOLATED to the
  110 steps of an 876-image epoch (validation not included).
* demo grids (config.yaml: 24 x 30 x 24 at 6 mm, the striatum crop 12 x 11 x 10),
  CPU: ``train_model`` itself on 60 random training and 10 validation images
  (the demo's subset sizes), 2 epochs; the median measured epoch (validation included).
* GPU rows: the same on CUDA (bf16 autocast, data resident on the device) when a
  GPU is present; otherwise printed as "not measured: no GPU".
Random images: the time of a step does not depend on the values.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np
import torch

from datxai.model import build_model, count_parameters
from datxai.model.train import Dataset, TrainSettings, device_name, train_model

PAPER = (71, 90, 72)
N_PAPER = 876
DEMO = {"full / nostriatum": (24, 30, 24), "striatum": (12, 11, 10)}


def paper_steps(device: str, steps: int, amp: bool) -> float:
    """Median seconds of one optimiser step at the paper grid (batch 8), after one warm-up step."""
    dev = torch.device(device)
    model = build_model(PAPER, seed=0).to(dev).to(memory_format=torch.channels_last_3d).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(8, 1, *PAPER)).astype(np.float32)).to(dev)
    x = x.contiguous(memory_format=torch.channels_last_3d)
    y = torch.from_numpy(rng.integers(0, 2, 8)).to(dev)
    times = []
    for i in range(steps + 1):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp and dev.type == "cuda"):
            logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if i > 0:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def demo_epoch(shape, device: str, epochs: int = 2) -> float:
    rng = np.random.default_rng(1)
    train = Dataset(rng.normal(size=(60, *shape)).astype(np.float32), np.arange(60) % 2, name="bench-train")
    val = Dataset(rng.normal(size=(10, *shape)).astype(np.float32), np.arange(10) % 2, name="bench-val")
    res = train_model(train, val, TrainSettings(epochs=epochs, seed=0, device=device))
    return statistics.median(r["seconds"] for r in res.history)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--paper-steps", type=int, default=2)
    ap.add_argument("--skip-paper", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    n_steps = math.ceil(N_PAPER / 8)
    print(f"torch {torch.__version__}; CPU: {device_name(torch.device('cpu'))}")
    print(f"paper grid {PAPER}: {count_parameters(build_model(PAPER, device='meta')):,} parameters; "
          f"{N_PAPER} images, batch 8 = {n_steps} steps per epoch")
    rows = []
    if not args.skip_paper:
        s = paper_steps("cpu", args.paper_steps, amp=False)
        rows.append(("cpu", f"paper {'x'.join(map(str, PAPER))}, 876 img",
                     f"{s * n_steps:9.0f}", f"extrapolated: {s:.1f} s/step x {n_steps} (median of {args.paper_steps})"))
    for name, shape in DEMO.items():
        rows.append(("cpu", f"demo {name} {'x'.join(map(str, shape))}, 60 img", f"{demo_epoch(shape, 'cpu'):9.2f}",
                     "measured: train_model, median of 2 epochs (incl. 10 val img)"))
    if torch.cuda.is_available():
        gpu = torch.cuda.get_device_name(0)
        for amp in (True, False):
            s = paper_steps("cuda", 20, amp=amp)
            rows.append((f"cuda{' bf16' if amp else ' fp32'}", f"paper {'x'.join(map(str, PAPER))}, 876 img",
                         f"{s * n_steps:9.1f}", f"extrapolated: {s * 1e3:.0f} ms/step x {n_steps} on {gpu}"))
        for name, shape in DEMO.items():
            rows.append(("cuda bf16", f"demo {name} {'x'.join(map(str, shape))}, 60 img",
                         f"{demo_epoch(shape, 'cuda', 3):9.3f}", "measured: train_model, median of 3 epochs"))
    else:
        rows.append(("cuda", "paper and demo grids", "        -", "not measured: no GPU"))
    print(f"{'device':10s} {'data':36s} {'s/epoch':>9s}  how")
    for r in rows:
        print(f"{r[0]:10s} {r[1]:36s} {r[2]}  {r[3]}")


if __name__ == "__main__":
    main()
