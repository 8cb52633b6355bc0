"""Where one optimiser step of the paper-scale CNN spends its GPU time (torch.profiler, CUDA only).

The model, optimiser, batch and memory format of ``train_model`` (bf16 autocast, NDHWC,
fused Adam) at the paper's grid (71 x 90 x 72, batch 8); ``--steps`` steps after
``--warmup`` steps, cudnn autotuning as ``train.deterministic: false``. Prints the
kernels by total CUDA time and the step time with and without each variant in
``--variants`` (``ncdhw``: the default memory format; ``fp32``: no autocast).

    python bench/profile_train_step.py [--steps 10] [--variants ncdhw fp32]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from datxai.model import build_model
from datxai.model.train import adam

PAPER = (71, 90, 72)


def make_step(channels_last: bool, amp: bool, shape=PAPER, batch=8):
    dev = torch.device("cuda")
    model = build_model(shape, seed=0).to(dev)
    if channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
    model.train()
    opt = adam(model.parameters(), 1e-4)
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(batch, 1, *shape)).astype(np.float32)).to(dev)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    y = torch.from_numpy(rng.integers(0, 2, batch)).to(dev)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def timed(step, n):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / n


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--variants", nargs="*", default=["ncdhw", "fp32"], choices=["ncdhw", "fp32"])
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: nothing to profile")
    torch.backends.cudnn.benchmark = True
    step = make_step(channels_last=True, amp=True)
    for _ in range(args.warmup):
        step()
    print(f"train_model's step (NDHWC, bf16): {timed(step, args.steps) * 1e3:.1f} ms", flush=True)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(args.steps):
            step()
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=25, max_name_column_width=70), flush=True)
    for v in args.variants:
        s = make_step(channels_last=(v != "ncdhw"), amp=(v != "fp32"))
        for _ in range(args.warmup):
            s()
        print(f"variant {v}: {timed(s, args.steps) * 1e3:.1f} ms per step", flush=True)


if __name__ == "__main__":
    main()
