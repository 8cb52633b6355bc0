"""``datxai explain``: LRP relevance maps of a setting's test cases (zennit composite by layer name)."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def add_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "explain", help="LRP relevance maps (eps / alpha2-beta1 / flat) of test cases, on the full MNI grid",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("--model", required=True, help="model.pt written by train_cnn")
    p.add_argument("--images", required=True, help="dataset/{setting}/test.npy")
    p.add_argument("--table", required=True, help="dataset/{setting}/test.tsv")
    p.add_argument("--predictions", required=True, help="evaluate/{setting}_predictions.tsv")
    p.add_argument("--setting", required=True, choices=["full", "striatum", "nostriatum"])
    p.add_argument("--out-dir", required=True, help="folder for {subject}_relevance.nii.gz and relevance.tsv")
    p.add_argument("--config", default="config/config.yaml", help="config YAML (grid, settings, explain, quantify)")
    p.add_argument("--device", help="auto | cpu | cuda (default: config explain.device)")
    p.add_argument("--batch-size", type=int, help="cases per pass (default: config explain.batch_size)")
    p.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..grid import Grid
    from ..numerics import pin_cpu_numerics
    from .maps import run_compute_relevance

    cfg = load_config(args.config)
    pin_cpu_numerics(**cfg["numerics"])
    grid = Grid.from_config(cfg["grid"])
    ex = cfg["explain"]
    table = run_compute_relevance(
        args.model, args.images, args.table, args.predictions, args.out_dir, args.setting, grid,
        cfg["settings"]["striatum_box_mm"], explain=ex, batch_size=args.batch_size or ex["batch_size"],
        device=args.device or ex["device"],
    )
    log.info("wrote %d relevance maps and relevance.tsv to %s", len(table), args.out_dir)
    return 0
