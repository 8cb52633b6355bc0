"""Pearson correlation of cluster uptake with the ipsilateral putamen SBR.

The CI is Fisher's: z = atanh(r), z +- z_{1-alpha/2} / sqrt(n - 3), back-transformed
with tanh. P is the usual t-test of r = 0 with n - 2 degrees of freedom.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy import stats

log = logging.getLogger(__name__)

SUBSETS = ("all", "reduced", "normal")


def pearson_fisher(x, y, alpha: float = 0.05) -> dict:
    """Pearson R of paired ``x``, ``y`` with a Fisher-z (1 - alpha) CI and a two-sided P.

    Returns dict r, r_ci_low, r_ci_high, p, n (NaNs when n < 3 or a variable is constant;
    the CI is NaN when n < 4).
    """
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"correlation: x has {x.size} values, y has {y.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("correlation: values contain NaN or Inf")
    n = x.size
    out = {"r": np.nan, "r_ci_low": np.nan, "r_ci_high": np.nan, "p": np.nan, "n": int(n)}
    if n < 3:
        return out
    xc, yc = x - x.mean(), y - y.mean()
    den = np.sqrt((xc ** 2).sum() * (yc ** 2).sum())
    if den == 0:
        return out
    r = float(np.clip((xc * yc).sum() / den, -1.0, 1.0))
    if abs(r) < 1:
        t = r * np.sqrt((n - 2) / (1 - r * r))
        p = float(2 * stats.t.sf(abs(t), n - 2))
    else:
        p = 0.0
    out.update(r=r, p=p)
    if n > 3:
        z = np.arctanh(np.clip(r, -1 + 1e-15, 1 - 1e-15))
        h = stats.norm.ppf(1 - alpha / 2) / np.sqrt(n - 3)
        out.update(r_ci_low=float(np.tanh(z - h)), r_ci_high=float(np.tanh(z + h)))
    return out


def cluster_sbr_correlations(table: pd.DataFrame, sbr_column: str = "sbr_putamen_ipsi") -> pd.DataFrame:
    """Correlation of uptake with ``sbr_column`` per cluster in all, reduced and normal subjects.

    Parameters
    ----------
    table : DataFrame
        Long format with subject, cluster, cluster_label, side, uptake, label and ``sbr_column``.

    Returns
    -------
    DataFrame: cluster, cluster_label, side, subset (all|reduced|normal), variable, n, r,
    r_ci_low, r_ci_high, p, test.
    """
    if sbr_column not in table.columns:
        raise ValueError(f"correlation: column {sbr_column!r} missing; have {list(table.columns)}")
    rows = []
    for (cluster, lab, side), g in table.groupby(["cluster", "cluster_label", "side"], sort=True):
        for subset in SUBSETS:
            s = g if subset == "all" else g[g["label"] == subset]
            r = pearson_fisher(s["uptake"], s[sbr_column])
            rows.append({"cluster": cluster, "cluster_label": lab, "side": side, "subset": subset,
                         "variable": sbr_column, **r, "test": "Pearson, t-test of r = 0; CI Fisher z"})
    cols = ["cluster", "cluster_label", "side", "subset", "variable", "n", "r", "r_ci_low", "r_ci_high", "p", "test"]
    return pd.DataFrame(rows, columns=cols)
