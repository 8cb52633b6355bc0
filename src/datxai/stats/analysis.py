"""The uptake statistics of one cluster setting, end to end (files in, tables out)."""

from __future__ import annotations

import logging

from ..io import read_tsv
from ..participants import load_participants
from .ancova import cluster_ancova
from .correlation import cluster_sbr_correlations
from .roc import cluster_roc
from .ttests import cluster_ttests
from .uptake import UPTAKE_COLUMNS, choose_focus, merge_uptake

log = logging.getLogger(__name__)

SBR_COLUMN = "sbr_putamen_ipsi"


def load_merged(uptake_tsv, participants_tsv, split_tsv, sbr_tsv=None):
    """Uptake (long) with label, subset and the SBR columns attached; errors name the file."""
    uptake = read_tsv(uptake_tsv, required=UPTAKE_COLUMNS)
    participants = load_participants(participants_tsv)  # the validated, normalised sheet
    split = read_tsv(split_tsv, required=["subject", "subset"])
    sbr = read_tsv(sbr_tsv, required=["subject", SBR_COLUMN]) if sbr_tsv else None
    return merge_uptake(uptake, participants, split, sbr,
                        sources={"participants": str(participants_tsv), "split": str(split_tsv), "sbr": str(sbr_tsv)})


def uptake_statistics(table, clusters, ttest: str = "welch", focus_label: str | None = None,
                      focus_side: str | None = None) -> dict:
    """t-tests, ROC and correlations of every cluster, and the focus cluster.

    Parameters
    ----------
    table : merged long table (see :func:`load_merged`).
    clusters : the clusters.tsv table (cluster, label, side, ...).

    Returns
    -------
    dict with DataFrames ``ttests``, ``roc``, ``correlation``, ``ancova`` (the difference adjusted for the
    ipsilateral putamen SBR: :mod:`datxai.stats.ancova`) and the ``focus`` dict.
    """
    tt = cluster_ttests(table, kind=ttest)
    roc = cluster_roc(table)
    cor = cluster_sbr_correlations(table, SBR_COLUMN)
    anc = cluster_ancova(table, SBR_COLUMN)
    focus = choose_focus(clusters, tt, focus_label, focus_side)
    log.info("%d clusters: %d t-tests, %d ROC rows, %d correlations, %d ANCOVAs", len(clusters), len(tt), len(roc),
             len(cor), len(anc))
    return {"ttests": tt, "roc": roc, "correlation": cor, "ancova": anc, "focus": focus}
