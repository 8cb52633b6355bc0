"""``datxai simulate``: write a synthetic cohort (the workflow's layout) without Snakemake."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def add_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "simulate", help="simulate a synthetic DAT-SPECT cohort (participants, truth, DICOM NM)",
        description="Write cohort/participants.tsv, cohort/truth/ and cohort/dicom/ under OUT "
                    "for the simulate section of a config.")
    p.add_argument("--config", default="config/config.yaml", help="config YAML (default: %(default)s)")
    p.add_argument("--out", required=True, help="results folder to write cohort/ into")
    p.add_argument("--n-subjects", type=int, default=None, help="override simulate.n_subjects")
    p.add_argument("--subjects", nargs="*", default=None, help="simulate only these subjects (default: all)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..config import load_config
    from . import cohort, phantom

    cfg = load_config(args.config)
    if args.n_subjects is not None:
        cfg["simulate"]["n_subjects"] = int(args.n_subjects)
    sim, seed = cfg["simulate"], cfg["seed"]
    out = Path(args.out) / "cohort"
    truth_tsv = out / "truth" / "cohort_truth.tsv"
    truth = cohort.write_participants(sim, seed, out / "participants.tsv", truth_tsv)
    subjects = args.subjects or list(truth["subject"])
    unknown = sorted(set(subjects) - set(truth["subject"]))
    if unknown:
        raise ValueError(f"--subjects: {unknown} not in the cohort of {len(truth)} subjects")
    anatomy = out / "truth" / "phantom_anatomy.npz"
    grid = phantom.phantom_grid(cfg["grid"], sim["phantom_voxel_mm"])
    phantom.build_anatomy(grid, phantom.required_regions(sim)).save(anatomy)
    for i, subject in enumerate(subjects, 1):
        log.info("[%d/%d] %s", i, len(subjects), subject)
        cohort.write_subject(subject, truth_tsv, anatomy, sim, cfg["grid"], seed, out / "dicom" / f"{subject}.dcm",
                             out / "truth" / f"{subject}_truth.json", out / "truth" / f"{subject}_activity.nii.gz")
    return 0
