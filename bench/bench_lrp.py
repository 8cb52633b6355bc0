"""LRP (zennit composite of S1/S2) seconds per case: paper grid (71x90x72) and demo grid (24x30x24).

Untrained CNN of the paper's architecture (16 filters, FC 32-16), random
inputs; the composite is the production one (:mod:`datxai.explain.lrp`).
A CPU row per grid (batched, ``--threads`` torch threads); a GPU row only when
CUDA is available. Also prints the conservation (sum of map / logit) with
``zero_params`` bias and none on those cases (an untrained net: indicative only).

    python bench/bench_lrp.py                       # both grids, CPU (+ GPU if present)
    python bench/bench_lrp.py --grids demo --repeats 3
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch

from datxai.explain.lrp import LRPConfig, relevance_batch
from datxai.model import build_model, count_parameters

GRIDS = {"paper": (71, 90, 72), "demo": (24, 30, 24)}


def bench(shape, device, batch, repeats, threads):
    torch.set_num_threads(threads)
    model = build_model(shape, conv_filters=16, fc_widths=(32, 16), seed=0).to(device).eval()
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.uniform(0, 3, (batch, 1) + shape).astype(np.float32)).to(device)
    relevance_batch(model, x[:1], LRPConfig())  # warm-up (allocations, kernels)
    if device.type == "cuda":
        torch.cuda.synchronize()
    times, cons = [], {}
    for _ in range(repeats):
        t0 = time.perf_counter()
        R, logits, tgt = relevance_batch(model, x, LRPConfig())
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) / batch)
    top = logits[torch.arange(batch), tgt]
    cons["bias"] = (R.sum(dim=(1, 2, 3)) / top).cpu().numpy().round(4).tolist()
    R2, _, _ = relevance_batch(model, x, LRPConfig(zero_params="none"))
    cons["none"] = (R2.sum(dim=(1, 2, 3)) / top).cpu().numpy().round(4).tolist()
    return {"grid": "x".join(map(str, shape)), "device": str(device), "batch": batch, "threads": threads,
            "params_M": round(count_parameters(model) / 1e6, 1), "s_per_case_median": float(np.median(times)),
            "s_per_case_min": float(np.min(times)), "conservation_bias": cons["bias"], "conservation_none": cons["none"]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grids", default="paper,demo")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args(argv)
    rows = []
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    for name in args.grids.split(","):
        for dev in devices:
            rows.append(bench(GRIDS[name], dev, args.batch, args.repeats, args.threads))
            print(json.dumps(rows[-1]), flush=True)
        if not torch.cuda.is_available():
            print(json.dumps({"grid": "x".join(map(str, GRIDS[name])), "device": "cuda",
                              "s_per_case_median": "not measured: no GPU"}), flush=True)
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} threads")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()
