"""``datxai reconstruct``: DICOM NM projections -> native NIfTI (FBP)."""

from __future__ import annotations

import argparse
import json
import logging

log = logging.getLogger(__name__)


def add_cli(subparsers) -> None:
    """Add the ``reconstruct`` subcommand."""
    from .fbp import FILTERS

    p = subparsers.add_parser("reconstruct", help="FBP of DICOM NM projections to a native NIfTI image",
                              description=__doc__.splitlines()[0])
    p.add_argument("dicom", help="multi-frame NM TOMO DICOM file")
    p.add_argument("output", help="output NIfTI (.nii.gz)")
    p.add_argument("--config", help="config YAML; its 'reconstruct' section is used (flags below override)")
    p.add_argument("--filter", dest="filter", choices=FILTERS)
    p.add_argument("--cutoff", dest="cutoff_cycles_per_cm", type=float, help="filter cut-off, cycles/cm")
    p.add_argument("--output-size", dest="output_size", type=int)
    p.add_argument("--interpolation", choices=("linear", "nearest"))
    p.add_argument("--chang", dest="attenuation_correction", action="store_true", default=None,
                   help="first-order Chang attenuation correction")
    p.add_argument("--mu", dest="mu_per_cm", type=float, help="attenuation coefficient, 1/cm")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .study import reconstruct_file

    params = {}
    if args.config:
        from ..config import load_config

        params.update(load_config(args.config).get("reconstruct", {}))
    for key in ("filter", "cutoff_cycles_per_cm", "output_size", "interpolation", "attenuation_correction",
                "mu_per_cm"):
        if getattr(args, key) is not None:
            params[key] = getattr(args, key)
    summary = reconstruct_file(args.dicom, args.output, params)
    log.info("%s", json.dumps({k: summary[k] for k in ("shape", "bin_mm", "n_heads", "views_per_head")}))
    return 0
