"""Seconds per synthetic subject at the demo (config.yaml) and paper (paper.yaml) scale.

Usage: python bench/bench_simulate.py [--repeats 3] [--scales demo paper]

Times, per subject: the activity model (binding + activity on the phantom grid),
the projector (all views, attenuation, collimator blur), Poisson noise, and
the whole ``write_subject`` job (anatomy load, simulation, DICOM, truth, NIfTI).
The phantom anatomy is built once per scale (not timed per subject).
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import numpy as np

from datxai.config import load_config
from datxai.simulate import cohort, phantom
from datxai.simulate.camera import Camera, project

ROOT = Path(__file__).resolve().parents[1]
SCALES = {"demo": "config/config.yaml", "paper": "config/paper.yaml"}


def bench(scale: str, repeats: int) -> None:
    cfg = load_config(ROOT / SCALES[scale])
    sim = copy.deepcopy(cfg["simulate"])
    sim["n_subjects"] = min(int(sim["n_subjects"]), 200)  # the draw is per cohort; a prefix suffices
    cam = Camera.from_config(sim["camera"])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        grid = phantom.phantom_grid(cfg["grid"], sim["phantom_voxel_mm"])
        phantom.build_anatomy(grid, phantom.required_regions(sim)).save(tmp / "anat.npz")
        t_anat = time.perf_counter() - t0
        truth = cohort.write_participants(sim, cfg["seed"], tmp / "participants.tsv", tmp / "truth.tsv")
        anat = phantom.PhantomAnatomy.load(tmp / "anat.npz")
        subjects = list(truth["subject"][:repeats])
        t_proj, t_sim, t_job = [], [], []
        for s in subjects:
            row = cohort.subject_row(truth, s)
            t0 = time.perf_counter()
            res = cohort.simulate_subject(row, anat, sim, cfg["seed"])
            t_sim.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            project(res["activity"], anat.grid, cam, res["pose"], anat.head)
            t_proj.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            cohort.write_subject(s, tmp / "truth.tsv", tmp / "anat.npz", sim, cfg["grid"], cfg["seed"],
                                 tmp / f"{s}.dcm", tmp / f"{s}.json", tmp / f"{s}.nii.gz")
            t_job.append(time.perf_counter() - t0)
    print(f"{scale}: phantom grid {grid.shape} of {grid.voxel_mm} mm, camera {cam.n_bins} bins x "
          f"{cam.n_views} views of {cam.bin_mm} mm")
    print(f"  anatomy (once per run)         {t_anat:6.2f} s")
    print(f"  projection per subject         {np.median(t_proj):6.2f} s  (median of {len(t_proj)})")
    print(f"  simulation per subject         {np.median(t_sim):6.2f} s  (activity + projection + noise)")
    print(f"  write_subject job per subject  {np.median(t_job):6.2f} s  (+ load, DICOM, truth, NIfTI)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--scales", nargs="+", default=list(SCALES), choices=list(SCALES))
    args = ap.parse_args()
    for scale in args.scales:
        bench(scale, args.repeats)


if __name__ == "__main__":
    main()
