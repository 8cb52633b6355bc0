"""Benchmark of the affine normalisation: seconds per scan and error on known transforms.

For the demo grid (6 mm, 24 x 30 x 24; camera 64 bins of 4.5 mm) and the paper
grid (2 mm, 71 x 90 x 72; camera 128 bins of 3.9 mm): the atlas seed template
on the grid is the template; each source is a finer (3 mm) seed seen through a
random pose (rotations +-10 deg, translations +-15 mm, head scale sd 5 %, plus
small shears and anisotropic zooms), resampled to the camera's native grid,
scaled and given Gaussian noise. Timed: smoothing of the source + estimation
(the template is smoothed once per run, as the workflow's template node),
single-threaded. Error: mean displacement (mm) over the atlas brain voxels.
Wall and CPU (process) seconds per scan are both printed: on a machine shared
with other jobs the CPU figure is the steadier one.

``--affine FILE`` times another version of ``datxai/register/affine.py`` on the
same scans (before/after comparisons), e.g.
``git show 38678f9:src/datxai/register/affine.py > /tmp/affine_old.py``; ``--save``
writes the estimated matrices (``.npz``) so that two versions can be compared.

``--batched DEVICE`` also times :func:`datxai.register.batched.estimate_affine_batch`
on all the scans at once (smoothing included, after a warm-up call on one scan;
single-threaded like the numpy rows unless ``OMP_NUM_THREADS`` is set) and prints its
largest difference from the numpy estimator (mean displacement, mm).

    python bench/bench_register.py [--n 5] [--grids demo paper] [--affine FILE] [--save FILE] [--batched cpu|cuda]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from datxai.atlas import atlas_on_grid  # noqa: E402
from datxai.geometry import mean_displacement_mm, native_affine  # noqa: E402
from datxai.grid import Grid  # noqa: E402
from datxai.register.affine import IDENTITY_PARAMS, estimate_affine, resample_affine, smooth_mm, spm_matrix  # noqa: E402
from datxai.register.template import seed_template  # noqa: E402

SETUPS = {
    "demo": dict(grid=Grid((24, 30, 24), 6.0), n_bins=64, bin_mm=4.5, sampling=(8.0, 4.0)),
    "paper": dict(grid=Grid((71, 90, 72), 2.0), n_bins=128, bin_mm=3.9, sampling=(8.0, 4.0, 2.0)),
}


def random_pose(rng):
    p = IDENTITY_PARAMS.copy()
    p[:3] = rng.uniform(-15, 15, 3)
    p[3:6] = np.deg2rad(rng.uniform(-10, 10, 3))
    p[6:9] = np.exp(rng.normal(0, 0.05)) * rng.uniform(0.97, 1.03, 3)
    p[9:12] = rng.uniform(-0.02, 0.02, 3)
    return spm_matrix(p)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5, help="scans per grid")
    ap.add_argument("--grids", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    ap.add_argument("--affine", help="time the estimator of this copy of datxai/register/affine.py instead")
    ap.add_argument("--batched", metavar="DEVICE", help="also time the batched torch estimator on DEVICE (cpu, cuda, auto)")
    ap.add_argument("--save", help="write the estimated matrices per grid here (.npz)")
    args = ap.parse_args(argv)
    estimate = estimate_affine
    if args.affine:
        import importlib.util

        spec = importlib.util.spec_from_file_location("affine_under_test", args.affine)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod  # dataclasses look their module up
        spec.loader.exec_module(mod)
        estimate = mod.estimate_affine
    saved = {}
    fine_grid = Grid((48, 60, 48), 3.0)
    fine = seed_template(atlas_on_grid(fine_grid), fwhm_mm=8.0)
    rng = np.random.default_rng(20211)
    print(f"# load average {os.getloadavg()[0]:.1f}; estimator {args.affine or 'datxai.register.affine'}")
    print(f"{'grid':6s} {'method':24s} {'n':>3s} {'s/scan (median)':>16s} {'s/scan (max)':>13s} {'CPU s (median)':>15s} "
          f"{'err mm (mean)':>14s} {'err mm (max)':>13s} {'start err mm':>13s} {'flags':>6s}")
    for name in args.grids:
        s = SETUPS[name]
        grid = s["grid"]
        atlas = atlas_on_grid(grid)
        tpl = smooth_mm(seed_template(atlas), grid.affine, 8.0)
        pts = grid.coords_mm()[:, atlas.brain_mask].T
        naff = native_affine(s["n_bins"], s["n_bins"], s["bin_mm"])
        shape = (s["n_bins"],) * 3
        scans = []
        for _ in range(args.n):
            pose = random_pose(rng)
            src = resample_affine(fine, fine_grid.affine, np.linalg.inv(pose), shape, naff) * 50.0
            src += rng.normal(0, 3.0, shape).astype(np.float32)
            scans.append((pose, src))
        times, cpus, errs, starts, flags, mats = [], [], [], [], 0, []
        for pose, src in scans:
            t0, c0 = time.perf_counter(), time.process_time()
            res = estimate(smooth_mm(src, naff, 8.0), naff, tpl, grid.affine, sampling_mm=s["sampling"])
            times.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
            mats.append(res.matrix)
            errs.append(mean_displacement_mm(res.matrix, pose, pts))
            starts.append(mean_displacement_mm(res.initial_matrix, pose, pts))
            flags += bool(res.flags)
        print(f"{name:6s} {'numpy, one by one':24s} {args.n:3d} {np.median(times):16.3f} {np.max(times):13.3f} "
              f"{np.median(cpus):15.3f} {np.mean(errs):14.3f} {np.max(errs):13.3f} {np.mean(starts):13.2f} {flags:6d}",
              flush=True)
        saved[name] = np.array(mats)
        saved[name + "_points"] = pts
        if args.batched:
            run_batched(args.batched, name, s, scans, naff, tpl, grid, pts, saved[name])
    if args.save:
        np.savez(args.save, **saved)


def run_batched(device, name, setup, scans, naff, tpl, grid, pts, numpy_matrices):
    """Time :func:`estimate_affine_batch` on all scans at once (after a warm-up on one); compare with numpy."""
    import torch

    from datxai.register.batched import estimate_affine_batch, resolve_device

    dev = resolve_device(device)

    def once(batch):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0, c0 = time.perf_counter(), time.process_time()
        res = estimate_affine_batch([smooth_mm(src, naff, 8.0) for _, src in batch], [naff] * len(batch), tpl,
                                    grid.affine, sampling_mm=setup["sampling"], device=device)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return res, time.perf_counter() - t0, time.process_time() - c0

    _, warm, _ = once(scans[:1])
    res, wall, cpu = once(scans)
    n = len(scans)
    errs = [mean_displacement_mm(r.matrix, pose, pts) for r, (pose, _) in zip(res, scans)]
    agree = max(mean_displacement_mm(r.matrix, m, pts) for r, m in zip(res, numpy_matrices))
    label = f"batched torch {dev.type}"
    print(f"{name:6s} {label:24s} {n:3d} {wall / n:16.3f} {'':>13s} {cpu / n:15.3f} {np.mean(errs):14.3f} "
          f"{np.max(errs):13.3f} {'':>13s} {sum(bool(r.flags) for r in res):6d}   "
          f"(warm-up on 1 scan {warm:.2f} s; max |batched - numpy| {agree:.2e} mm; smoothing included)", flush=True)


if __name__ == "__main__":
    main()
