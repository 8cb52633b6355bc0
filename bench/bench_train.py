"""Seconds per training epoch of the CNN: the paper's grid (876 images of 71 x 90 x 72) and the demo grids.

Usage: python bench/bench_train.py [--threads 2] [--cpu-isa avx2|native] [--paper-steps 2] [--skip-paper]
                                   [--paper-settings [--measure-epochs 3]] [--gpu-only]

``--cpu-isa`` is ``numerics.cpu_isa`` (:mod:`datxai.numerics`): run the script once
with each to measure what the AVX2 pin of the reproducibility contract costs.

* paper grid, CPU: a few optimiser steps (batch 8, Adam, cross-entropy, NDHWC
  memory as in ``train_model``) after one warm-up step, EXTRAPOLATED to the
  110 steps of an 876-image epoch (validation not included).
* demo grids (config.yaml: 24 x 30 x 24 at 6 mm, the striatum crop 12 x 11 x 10),
  CPU: ``train_model`` itself on 195 random training and 30 validation images
  (the demo's subset sizes), 2 epochs; the median measured epoch (validation included).
* demo grid, one optimiser step of 8 images with ``train_model``'s Adam (fused kernel)
  and with PyTorch's per-tensor loop (``foreach=False``): what the fused kernel saves.
* GPU rows: the same on CUDA (bf16 autocast, data resident on the device) when a
  GPU is present; otherwise printed as "not measured: no GPU".
* ``--paper-settings`` (GPU only): ``train_model`` itself at the paper's scale for
  each setting of config/paper.yaml (its grid, striatum box, FC widths, batch size,
  876 training and 130 validation images), ``--measure-epochs`` epochs each, the
  median epoch extrapolated to the setting's epoch count (full 50, striatum 50,
  nostriatum 200): the "all three settings on one GPU" row.
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
from datxai.model.train import Dataset, TrainSettings, adam, device_name, train_model
from datxai.numerics import pin_cpu_numerics

PAPER = (71, 90, 72)
N_PAPER = 876
DEMO = {"full / nostriatum": (24, 30, 24), "striatum": (12, 11, 10)}


def paper_steps(device: str, steps: int, amp: bool, shape=PAPER, fused: bool = True) -> float:
    """Median seconds of one optimiser step (batch 8) at ``shape``, after one warm-up step.

    ``fused``: ``train_model``'s Adam (:func:`datxai.model.train.adam`); else PyTorch's per-tensor loop.
    """
    dev = torch.device(device)
    model = build_model(shape, seed=0).to(dev).to(memory_format=torch.channels_last_3d).train()
    opt = adam(model.parameters(), 1e-4) if fused else torch.optim.Adam(model.parameters(), lr=1e-4, foreach=False)
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(8, 1, *shape)).astype(np.float32)).to(dev)
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
    train = Dataset(rng.normal(size=(195, *shape)).astype(np.float32), np.arange(195) % 2, name="bench-train")
    val = Dataset(rng.normal(size=(30, *shape)).astype(np.float32), np.arange(30) % 2, name="bench-val")
    res = train_model(train, val, TrainSettings(epochs=epochs, seed=0, device=device))
    return statistics.median(r["seconds"] for r in res.history)


def emit(row: tuple) -> tuple:
    """Print one row as soon as it is measured (a step cut off by its time limit keeps what it printed)."""
    print(f"{row[0]:10s} {row[1]:36s} {row[2]}  {row[3]}", flush=True)
    return row


def paper_settings(measure_epochs: int) -> list[tuple]:
    """Rows of ``--paper-settings``: per setting, measured s/epoch and the extrapolated minutes."""
    from pathlib import Path

    from datxai.config import load_config
    from datxai.dataset import setting_shape
    from datxai.grid import Grid

    cfg = load_config(Path(__file__).resolve().parents[1] / "config" / "paper.yaml")
    grid = Grid.from_config(cfg["grid"])
    shapes = {name: setting_shape(name, grid, cfg["settings"]["striatum_box_mm"]) for name in cfg["settings"]["names"]}
    rng = np.random.default_rng(2)
    n_train, n_val = cfg["split"]["sizes"]["train"], cfg["split"]["sizes"]["val"]
    rows, total = [], 0.0
    for setting in cfg["settings"]["names"]:
        shape = shapes[setting]
        train = Dataset(rng.normal(size=(n_train, *shape)).astype(np.float32), np.arange(n_train) % 2, name="train")
        val = Dataset(rng.normal(size=(n_val, *shape)).astype(np.float32), np.arange(n_val) % 2, name="val")
        t = cfg["train"]
        settings = TrainSettings(epochs=measure_epochs, learning_rate=t["learning_rate"], batch_size=t["batch_size"],
                                 seed=0, device="cuda", deterministic=t["deterministic"], amp=t["amp"])
        m = cfg["model"]
        res = train_model(train, val, settings, conv_filters=m["conv_filters"], n_conv=m["n_conv"],
                          fc_widths=m["fc_widths"][setting], dropout=m["dropout"], center_input=m["center_input"])
        epoch_s = statistics.median(r["seconds"] for r in res.history[1:] or res.history)  # first epoch: autotuning
        epochs = t["epochs"][setting]
        total += epoch_s * epochs
        rows.append(emit((f"cuda {'bf16' if t['amp'] else 'fp32'}", f"paper {setting} {'x'.join(map(str, shape))}, "
                     f"{n_train}+{n_val} img", f"{epoch_s:9.2f}",
                     f"measured: train_model, median of epochs 2-{measure_epochs}; x {epochs} epochs = "
                     f"{epoch_s * epochs / 60:.1f} min (first epoch {res.history[0]['seconds']:.1f} s)")))
        del train, val, res
        torch.cuda.empty_cache()
    rows.append(emit(("cuda", "paper, all three settings", f"{total / 60:8.1f}m", "extrapolated total, minutes")))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cpu-isa", choices=["avx2", "native"], default="avx2", help="numerics.cpu_isa")
    ap.add_argument("--paper-steps", type=int, default=2)
    ap.add_argument("--skip-paper", action="store_true")
    ap.add_argument("--paper-settings", action="store_true", help="GPU: the three settings at the paper's scale")
    ap.add_argument("--measure-epochs", type=int, default=3)
    ap.add_argument("--gpu-only", action="store_true", help="no CPU rows (the GPU machine's session)")
    args = ap.parse_args()
    pin_cpu_numerics(args.cpu_isa, args.threads)  # before the first torch computation
    n_steps = math.ceil(N_PAPER / 8)
    print(f"torch {torch.__version__}; CPU: {device_name(torch.device('cpu'))}")
    print(f"paper grid {PAPER}: {count_parameters(build_model(PAPER, device='meta')):,} parameters; "
          f"{N_PAPER} images, batch 8 = {n_steps} steps per epoch")
    print(f"{'device':10s} {'data':36s} {'s/epoch':>9s}  how", flush=True)
    rows = []
    if not args.gpu_only:
        if not args.skip_paper:
            s = paper_steps("cpu", args.paper_steps, amp=False)
            rows.append(emit(("cpu", f"paper {'x'.join(map(str, PAPER))}, 876 img", f"{s * n_steps:9.0f}",
                              f"extrapolated: {s:.1f} s/step x {n_steps} (median of {args.paper_steps})")))
        full = DEMO["full / nostriatum"]
        for fused in (False, True):
            s = paper_steps("cpu", 10, amp=False, shape=full, fused=fused)
            rows.append(emit(("cpu", f"demo step {'x'.join(map(str, full))}, 8 img", f"{s * 25:9.2f}",
                              f"{s * 1e3:.0f} ms/step x 25, Adam {'fused (train_model)' if fused else 'per-tensor loop'}")))
        for name, shape in DEMO.items():
            rows.append(emit(("cpu", f"demo {name} {'x'.join(map(str, shape))}, 195 img",
                              f"{demo_epoch(shape, 'cpu'):9.2f}", "measured: train_model, median of 2 epochs (incl. 30 val img)")))
    if torch.cuda.is_available():
        gpu = torch.cuda.get_device_name(0)
        for amp in (True, False):
            s = paper_steps("cuda", 20, amp=amp)
            rows.append(emit((f"cuda{' bf16' if amp else ' fp32'}", f"paper {'x'.join(map(str, PAPER))}, 876 img",
                              f"{s * n_steps:9.1f}", f"extrapolated: {s * 1e3:.0f} ms/step x {n_steps} on {gpu}")))
        if args.paper_settings:
            rows += paper_settings(args.measure_epochs)
        for name, shape in DEMO.items():
            rows.append(emit(("cuda bf16", f"demo {name} {'x'.join(map(str, shape))}, 195 img",
                              f"{demo_epoch(shape, 'cuda', 3):9.3f}", "measured: train_model, median of 3 epochs")))
    else:
        rows.append(emit(("cuda", "paper and demo grids", "        -", "not measured: no GPU")))

if __name__ == "__main__":
    main()
