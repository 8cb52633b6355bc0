"""``datxai group``: heat map (mean TP - mean TN) and extrastriatal clusters of one setting's relevance maps."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def add_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "group", help="heat map = mean relevance TP - TN, clusters above its percentile outside the striatum",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("relevance_dir", help="folder with relevance.tsv and {subject}_relevance.nii.gz")
    p.add_argument("--out-dir", required=True, help="writes heat/mean_tp/mean_tn.nii.gz, group.json, clusters.*")
    p.add_argument("--setting", default="", help="name used in messages")
    p.add_argument("--config", default="config/config.yaml", help="config YAML (grid, settings, group)")
    p.add_argument("--atlas", help="atlas bundle atlas_grid.npz; default: build it")
    p.add_argument("--no-clusters", action="store_true", help="only the group maps")
    p.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..grid import Grid
    from ..preprocess import load_atlas
    from .run import cluster_region, run_find_clusters, run_group_relevance

    cfg = load_config(args.config)
    grid = Grid.from_config(cfg["grid"])
    out = Path(args.out_dir)
    run_group_relevance(args.relevance_dir, grid, out / "heat.nii.gz", out / "mean_tp.nii.gz",
                        out / "mean_tn.nii.gz", out / "group.json", setting=args.setting)
    if not args.no_clusters:
        g = cfg["group"]
        table = run_find_clusters(out / "heat.nii.gz", load_atlas(args.atlas, grid), grid,
                                  cfg["settings"]["striatum_box_mm"], out / "clusters.nii.gz", out / "clusters.tsv",
                                  g["percentile"], g["connectivity"], g["min_cluster_ml"],
                                  region=cluster_region(args.setting), sign=g["heat_sign"])
        log.info("%d clusters written to %s", len(table), out / "clusters.tsv")
    return 0
