"""``datxai quantify``: scale, quantify (putamen/caudate SBR) and mirror normalised images."""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path

log = logging.getLogger(__name__)


def add_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "quantify", help="scale to the reference region, putamen/caudate SBR by hottest voxels, mirror (I left)",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("images", nargs="+", help="MNI-space NIfTI images on the analysis grid ({subject}_space-MNI_spect.nii.gz)")
    p.add_argument("--out-dir", required=True, help="output folder: scaled images, per-subject JSON, sbr.tsv")
    p.add_argument("--config", help="config YAML (grid, scale, quantify); default: the package defaults")
    p.add_argument("--atlas", help="atlas bundle atlas_grid.npz (faster); default: resample the packaged atlas")
    p.set_defaults(func=_cli)


def _subject(path: str) -> str:
    m = re.match(r"(sub-[A-Za-z0-9]+)", Path(path).name)
    if not m:
        raise ValueError(f"{path}: file name does not start with a subject id sub-XXXX")
    return m.group(1)


def _grid_from_image(path):
    """The analysis grid an MNI-space image lies on (isotropic, axis-aligned RAS+)."""
    import nibabel as nib
    import numpy as np

    from ..grid import Grid

    img = nib.load(str(path))
    shape = np.array(img.shape[:3])
    centre = img.affine[:3, :3] @ ((shape - 1) / 2.0) + img.affine[:3, 3]
    return Grid(tuple(int(n) for n in shape), float(img.affine[0, 0]), tuple(float(c) for c in centre))


def _cli(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..grid import Grid
    from ..io import write_tsv
    from . import load_atlas
    from .quality import collect_sbr, process_file

    if args.config:
        cfg = load_config(args.config)
        grid = Grid.from_config(cfg["grid"])
        sc, qu = cfg["scale"], cfg["quantify"]
    else:
        grid = _grid_from_image(args.images[0])
        sc, qu = {"reference_percentile": 75.0}, {"putamen_margin_mm": 6.0, "hottest_volume_ml": 4.0}
    atlas = load_atlas(args.atlas, grid) if args.atlas else load_atlas(grid=grid)
    out = Path(args.out_dir)
    jsons = []
    for i, path in enumerate(args.images, 1):
        subj = _subject(path)
        js = out / f"{subj}_sbr.json"
        rec = process_file(path, atlas, out / f"{subj}_space-MNI_desc-scaled_spect.nii.gz", js, subj,
                           sc["reference_percentile"], qu["putamen_margin_mm"], qu["hottest_volume_ml"])
        log.info("[%d/%d] %s: putamen SBR I %.3f C %.3f (mirrored %s)", i, len(args.images), subj,
                 rec["sbr_putamen_ipsi"], rec["sbr_putamen_contra"], rec["mirrored"])
        jsons.append(js)
    write_tsv(collect_sbr(jsons), out / "sbr.tsv")
    log.info("wrote %s", out / "sbr.tsv")
    return 0
