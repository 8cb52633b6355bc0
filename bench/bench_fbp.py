"""Seconds per study: datxai FBP (numpy, the only engine) vs skimage ``iradon`` over slices.

A study is ``--slices`` sinograms of ``--views`` x ``--bins`` (default 128 x 120 x 128,
the paper's acquisition): analytic projections of random discs (Shepp-Logan
filter, no cut-off so that both use the same filter). ``cold`` includes building the
back-projection operator (once per geometry and process, as in a workflow job);
``warm`` reuses it. The accuracy column compares each reconstruction with
iradon inside the field of view on the same sinograms with one zero bin
appended (129 bins), where skimage's centre of rotation (``n // 2``) and
datxai's (``(n - 1) / 2``) coincide; at 128 bins they differ by half a bin by
convention. Wall and CPU (process) seconds are both printed: on a shared
machine the CPU figure is the steadier one. The torch engine (CPU and CUDA) this
script also timed was removed (BENCHMARKS.md, FBP: < 0.06 s per study saved in a
~2 s job). Usage: ``python bench/bench_fbp.py [--slices 128] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import time

import numpy as np


def disc_sinograms(n_slices, n_views, n_bins, rng):
    """Radon transform (pixel units) of 6 random discs per slice: 2 c sqrt(r^2 - (s - s0)^2)."""
    theta = np.arange(n_views) * 360.0 / n_views
    t = np.deg2rad(theta)[None, :, None]
    s = (np.arange(n_bins) - (n_bins - 1) / 2.0)[None, None, :]
    sino = np.zeros((n_slices, n_views, n_bins))
    for _ in range(6):
        cx, cy = rng.uniform(-25, 25, (2, n_slices, 1, 1))
        r = rng.uniform(4, 20, (n_slices, 1, 1))
        c = rng.uniform(0.5, 2.0, (n_slices, 1, 1))
        s0 = cx * np.cos(t) + cy * np.sin(t)
        sino += 2 * c * np.sqrt(np.clip(r**2 - (s - s0) ** 2, 0, None))
    return sino.astype(np.float32), theta


def timed(fn, repeats):
    """Best wall and best CPU (process) seconds over ``repeats`` calls, and the last output."""
    best, best_cpu = np.inf, np.inf
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return (best, best_cpu), out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slices", type=int, default=128)
    ap.add_argument("--views", type=int, default=120)
    ap.add_argument("--bins", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    from skimage.transform import iradon

    fbp_mod = importlib.import_module("datxai.recon.fbp")  # the module (datxai.recon.fbp is also the function)

    rng = np.random.default_rng(0)
    sino, theta = disc_sinograms(args.slices, args.views, args.bins, rng)
    kw = dict(filter_name="shepp-logan", cutoff_cycles_per_cm=None)  # bin_mm = 1: pixel units; circle (default)

    def ours(s=sino):
        return fbp_mod.fbp(s, theta, 1.0, **kw)

    def skimage_study(s=sino):
        n = s.shape[-1]
        return np.stack([iradon(sl.T.astype(np.float64), theta, output_size=n, filter_name="shepp-logan",
                                circle=False)[::-1, :].T for sl in s])

    # accuracy on 129 bins (shared centre of rotation), a subset of slices
    s129 = np.concatenate([sino[:8], np.zeros(sino[:8].shape[:-1] + (1,), np.float32)], axis=-1)
    ref129 = skimage_study(s129)
    c = np.arange(129) - 64.0
    x, y = np.meshgrid(c, c, indexing="ij")
    fov = x**2 + y**2 <= 63.0**2

    def rel(a):
        return float(np.abs(np.asarray(a) - ref129)[:, fov].max() / np.abs(ref129[:, fov]).max())

    rows = []
    t_sk, _ = timed(skimage_study, 1)
    rows.append(("skimage iradon (loop over slices)", t_sk, 0.0))
    fbp_mod._backprojector.cache_clear()
    t_cold, _ = timed(ours, 1)
    t_warm, _ = timed(ours, args.repeats)
    err = rel(ours(s129))
    rows.append(("datxai numpy cold (operator build)", t_cold, err))
    rows.append(("datxai numpy warm", t_warm, err))

    print(f"FBP per study: {args.slices} slices x {args.views} views x {args.bins} bins; "
          f"{platform.processor() or platform.machine()}, numpy {np.__version__}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'method':45s} {'s/study':>9s} {'speed-up':>9s} {'CPU s':>7s} {'speed-up':>9s} "
          f"{'max rel diff vs iradon':>23s}")
    for name, (t, c), err in rows:
        print(f"{name:45s} {t:9.3f} {t_sk[0] / t:8.1f}x {c:7.3f} {t_sk[1] / c:8.1f}x {err:23.2e}")


if __name__ == "__main__":
    main()
