"""LRP seconds per case, direct (batched tensor ops) and zennit backends: paper grid (71x90x72) and demo grid (24x30x24).

Untrained CNN of the paper's architecture (16 filters, FC 32-16), random
inputs; the composite is the production one (:mod:`datxai.explain.lrp`,
``config.explain``). One row per grid, backend and device: wall seconds per
case (median and min over ``--repeats`` batches of ``--batch`` cases) and CPU
seconds per case (process time: on a machine shared with other jobs this is the
steadier figure; with T threads, wall ~ CPU / T on an idle machine). Where both
backends ran, ``max_diff`` is ``max |R_direct - R_zennit| / max |R_zennit|`` per
case (the equivalence check), ``cons`` the conservation sum(R)/logit of the
direct maps. A CUDA row runs when CUDA is available (``--devices``).

    python bench/bench_lrp.py                                # both grids, both backends, CPU (+ CUDA if present)
    python bench/bench_lrp.py --grids paper --backends direct --batch 4 --repeats 5
    python bench/bench_lrp.py --grids paper --backends direct --cpu-isa native   # the cost of the AVX2 pin

``--cpu-isa`` is ``numerics.cpu_isa`` (:mod:`datxai.numerics`, default avx2 as in the workflow).
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


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench(shape, device, backend, batch, repeats, model, x):
    relevance_batch(model, x[:1], LRPConfig(), backend=backend)  # warm-up (allocations, kernels, chain check)
    _sync(device)
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        R, logits, tgt = relevance_batch(model, x, LRPConfig(), backend=backend)
        _sync(device)
        wall.append((time.perf_counter() - t0) / batch)
        cpu.append((time.process_time() - c0) / batch)
    top = logits[torch.arange(batch), tgt]
    cons = (R.sum(dim=(1, 2, 3)) / top).cpu().numpy()
    row = {"grid": "x".join(map(str, shape)), "backend": backend, "device": str(device), "batch": batch,
           "threads": torch.get_num_threads(), "params_M": round(count_parameters(model) / 1e6, 1),
           "wall_s_case_median": round(float(np.median(wall)), 5), "wall_s_case_min": round(float(np.min(wall)), 5),
           "cpu_s_case_median": round(float(np.median(cpu)), 3), "cons": np.round(cons.astype(float), 4).tolist()}
    return row, R.cpu()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grids", default="paper,demo")
    ap.add_argument("--backends", default="direct,zennit")
    ap.add_argument("--devices", default="cpu,cuda", help="cuda is skipped (and said so) when not available")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--zennit-repeats", type=int, default=1, help="repeats of the (slow) zennit backend")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cpu-isa", choices=["avx2", "native"], default="avx2", help="numerics.cpu_isa")
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args(argv)
    from datxai.numerics import pin_cpu_numerics

    pin_cpu_numerics(args.cpu_isa, args.threads)  # before the first torch computation
    rows = []
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} threads, "
          f"cpu_isa {args.cpu_isa}, "
          f"load average {' '.join(f'{v:.1f}' for v in _loadavg())}")
    print(f"{'grid':9s} {'backend':7s} {'device':6s} {'batch':>5s} {'wall s/case':>11s} {'(min)':>7s} "
          f"{'CPU s/case':>10s} {'max_diff':>9s}  cons")
    for name in args.grids.split(","):
        shape = GRIDS[name]
        rng = np.random.default_rng(0)
        x_cpu = torch.from_numpy(rng.uniform(0, 3, (args.batch, 1) + shape).astype(np.float32))
        for dev_name in args.devices.split(","):
            if dev_name == "cuda" and not torch.cuda.is_available():
                print(f"{name:9s} {'-':7s} cuda   not measured: CUDA not available on this machine")
                rows.append({"grid": "x".join(map(str, shape)), "device": "cuda", "wall_s_case_median": None,
                             "note": "not measured: no GPU"})
                continue
            device = torch.device(dev_name)
            if device.type == "cuda":
                torch.backends.cudnn.benchmark = True
            model = build_model(shape, conv_filters=16, fc_widths=(32, 16), seed=0).to(device).eval()
            x = x_cpu.to(device)
            maps = {}
            for backend in args.backends.split(","):
                reps = args.zennit_repeats if backend == "zennit" else args.repeats
                row, maps[backend] = bench(shape, device, backend, args.batch, reps, model, x)
                if "direct" in maps and "zennit" in maps and backend == args.backends.split(",")[-1]:
                    d, z = maps["direct"], maps["zennit"]
                    row["max_diff"] = [float((d[k] - z[k]).abs().max() / z[k].abs().max()) for k in range(len(z))]
                rows.append(row)
                md = f"{max(row['max_diff']):9.1e}" if "max_diff" in row else f"{'':9s}"
                print(f"{name:9s} {backend:7s} {dev_name:6s} {args.batch:5d} {row['wall_s_case_median']:11.4f} "
                      f"{row['wall_s_case_min']:7.4f} {row['cpu_s_case_median']:10.3f} {md}  {row['cons']}",
                      flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)


def _loadavg():
    try:
        import os

        return os.getloadavg()
    except OSError:
        return (float("nan"),) * 3


if __name__ == "__main__":
    main()
