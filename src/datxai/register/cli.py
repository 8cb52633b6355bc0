"""``datxai normalize``: register native SPECT images to a template and reslice them to the MNI grid."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def add_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "normalize", help="affine normalisation of native SPECT to an FP-CIT template (MNI grid)",
        description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("images", nargs="*", type=Path, help="native SPECT NIfTI image(s)")
    p.add_argument("-t", "--template", type=Path, help="template NIfTI in MNI space (default: the atlas-derived seed)")
    p.add_argument("-o", "--outdir", type=Path, default=Path("normalized"), help="output folder")
    p.add_argument("-c", "--config", type=Path, help="config YAML (grid and normalize sections); default: the embedded demo")
    p.add_argument("--write-seed-template", type=Path, metavar="PATH",
                   help="write the atlas-derived seed template on the config grid to PATH and exit")
    p.set_defaults(func=run_cli)


def _config(path):
    from ..config import load_config

    if path is not None:
        return load_config(path)
    default = Path(__file__).resolve().parents[3] / "config" / "config.yaml"
    if not default.is_file():
        raise FileNotFoundError("no --config given and the embedded config/config.yaml was not found")
    return load_config(default)


def run_cli(args) -> int:
    from ..atlas import atlas_on_grid
    from ..grid import Grid
    from ..io import save_nifti
    from .template import seed_template
    from .workflow import normalize_options, run_normalize

    cfg = _config(args.config)
    grid = Grid.from_config(cfg["grid"])
    template = args.template
    if args.write_seed_template or template is None:
        seed_path = args.write_seed_template or (args.outdir / "seed_template.nii.gz")
        save_nifti(seed_template(atlas_on_grid(grid)), grid.affine, seed_path, header_extra={"mni": True})
        log.info("seed template written to %s", seed_path)
        if args.write_seed_template:
            return 0
        template = seed_path
    if not args.images:
        raise ValueError("no images given")
    n_bad = 0
    for img in args.images:
        stem = img.name.split(".")[0]
        info = run_normalize(img, template, args.outdir / f"{stem}_space-MNI_spect.nii.gz",
                             args.outdir / f"{stem}_affine.json", grid, subject=stem, **normalize_options(cfg["normalize"]))
        n_bad += bool(info["diverged"])
        log.info("%s: cost %.4g, %d iterations, flags: %s", stem, info["cost"], info["iterations"], ", ".join(info["flags"]) or "none")
    return 1 if n_bad else 0
