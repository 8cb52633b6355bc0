"""``datxai stats``: cluster uptake, uptake statistics, Figs. 4-5, SBR comparator, provenance check."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def _uptake(args) -> int:
    from ..io import write_tsv
    from .uptake import compute_uptake

    images = [Path(p) for p in args.images]
    subjects = [p.name.split("_")[0] for p in images]
    write_tsv(compute_uptake(subjects, images, args.clusters_nii, args.clusters_tsv), args.out)
    return 0


def _analyse(args) -> int:
    from ..io import read_tsv, write_json, write_tsv
    from .analysis import load_merged, uptake_statistics
    from .figures import plot_focus_uptake, plot_uptake_vs_sbr

    table = load_merged(args.uptake, args.participants, args.split, args.sbr)
    clusters = read_tsv(args.clusters_tsv, required=["cluster", "label", "side"])
    out = uptake_statistics(table, clusters, args.ttest, args.focus_label, args.focus_side)
    d = Path(args.outdir)
    for name in ("ttests", "roc", "correlation"):
        write_tsv(out[name], d / f"{name}.tsv")
    write_json(out["focus"], d / "focus.json")
    plot_focus_uptake(table, out["focus"], d / "fig4_focus_uptake.png")
    plot_uptake_vs_sbr(table, out["focus"], d / "fig5_uptake_vs_sbr.png")
    return 0


def _comparator(args) -> int:
    from ..io import read_tsv, write_tsv
    from ..participants import load_participants
    from .comparator import sbr_comparator
    from .uptake import merge_uptake

    sbr = read_tsv(args.sbr, required=["subject", "sbr_putamen_ipsi"])
    table = merge_uptake(sbr, load_participants(args.participants),
                         read_tsv(args.split, required=["subject", "subset"]),
                         sources={"participants": args.participants, "split": args.split})
    write_tsv(sbr_comparator(table), args.out)
    return 0


def _verify(args) -> int:
    from ..provenance import verify_checksums

    problems = verify_checksums(args.provenance)
    for p in problems:
        log.error("%s", p)
    if not problems:
        log.info("all input checksums in %s match", args.provenance)
    return 1 if problems else 0


def add_cli(subparsers) -> None:
    """Add ``datxai stats {uptake,analyse,comparator,verify-provenance}``."""
    p = subparsers.add_parser("stats", help="cluster-uptake statistics, Figs. 4-5, SBR comparator, provenance check",
                              description=__doc__)
    sub = p.add_subparsers(dest="stats_command", metavar="STEP")
    sub.required = True

    u = sub.add_parser("uptake", help="mean scaled uptake per subject and cluster (long TSV)")
    u.add_argument("--clusters-nii", required=True)
    u.add_argument("--clusters-tsv", required=True)
    u.add_argument("--out", required=True, help="uptake.tsv")
    u.add_argument("images", nargs="+", help="scaled, mirrored MNI images named {subject}_*.nii.gz")
    u.set_defaults(func=_uptake)

    a = sub.add_parser("analyse", help="t-tests, ROC, correlations, focus cluster and Figs. 4-5")
    a.add_argument("--uptake", required=True)
    a.add_argument("--participants", required=True)
    a.add_argument("--split", required=True)
    a.add_argument("--sbr", required=True)
    a.add_argument("--clusters-tsv", required=True)
    a.add_argument("--ttest", choices=["welch", "student"], default="welch")
    a.add_argument("--focus-label", default="Insular_Cortex", help="atlas base name of the focus cluster")
    a.add_argument("--focus-side", choices=["I", "C"], default="I")
    a.add_argument("--outdir", required=True)
    a.set_defaults(func=_analyse)

    c = sub.add_parser("comparator", help="ipsilateral putamen SBR as a classifier (Youden cut-off on train)")
    c.add_argument("--sbr", required=True)
    c.add_argument("--participants", required=True)
    c.add_argument("--split", required=True)
    c.add_argument("--out", required=True)
    c.set_defaults(func=_comparator)

    v = sub.add_parser("verify-provenance", help="recompute input checksums of a provenance.json (exit 1 if changed)")
    v.add_argument("provenance")
    v.set_defaults(func=_verify)
