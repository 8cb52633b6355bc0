"""Two-sample t-tests of cluster uptake, reduced vs normal, with Holm adjustment.

Differences and effect sizes are *reduced minus normal*: a negative t or d means
lower uptake in the reduced group. Cohen's d uses the pooled standard deviation
(both test kinds), so that d does not depend on the choice of test.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy import stats

from ..checks import check_choice

log = logging.getLogger(__name__)

TEST_KINDS = ("welch", "student")


def two_sample_ttest(reduced, normal, kind: str = "welch") -> dict:
    """Two-sided two-sample t-test of ``reduced`` vs ``normal``.

    Parameters
    ----------
    reduced, normal : array_like (n1,), (n2,)
        Values per subject (e.g. mean scaled uptake, unitless ratio to the reference).
    kind : {"welch", "student"}
        Welch (unequal variances, Welch-Satterthwaite df) or Student (pooled variance).

    Returns
    -------
    dict: test, t, df, p, cohen_d, mean_reduced, sd_reduced, n_reduced, mean_normal,
    sd_normal, n_normal (SDs with ddof = 1). t, df, p, d are NaN when a group has
    fewer than 2 values or both variances are zero.
    """
    check_choice("stats.ttest", kind, TEST_KINDS)
    a = np.asarray(reduced, dtype=float).ravel()
    b = np.asarray(normal, dtype=float).ravel()
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("t-test: values contain NaN or Inf")
    n1, n2 = a.size, b.size
    out = {
        "test": f"{kind} t-test, two-sided",
        "mean_reduced": float(a.mean()) if n1 else np.nan,
        "sd_reduced": float(a.std(ddof=1)) if n1 > 1 else np.nan,
        "n_reduced": int(n1),
        "mean_normal": float(b.mean()) if n2 else np.nan,
        "sd_normal": float(b.std(ddof=1)) if n2 > 1 else np.nan,
        "n_normal": int(n2),
        "t": np.nan, "df": np.nan, "p": np.nan, "cohen_d": np.nan,
    }
    if n1 < 2 or n2 < 2:
        return out
    v1, v2 = a.var(ddof=1), b.var(ddof=1)
    pooled = ((n1 - 1) * v1 + (n2 - 1) * v2) / (n1 + n2 - 2)
    if pooled <= 0:
        return out
    res = stats.ttest_ind(a, b, equal_var=(kind == "student"))  # Welch-Satterthwaite df for welch
    out.update(t=float(res.statistic), df=float(res.df), p=float(res.pvalue),
               cohen_d=float((a.mean() - b.mean()) / np.sqrt(pooled)))
    return out


def holm(pvalues) -> np.ndarray:
    """Holm step-down adjusted P values (statsmodels ``multipletests``); NaNs stay NaN, not counted."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return out


def cluster_ttests(table: pd.DataFrame, kind: str = "welch", subsets=("train", "test")) -> pd.DataFrame:
    """t-tests per cluster and subset; Holm adjustment over the clusters within a subset.

    Parameters
    ----------
    table : DataFrame
        Long format with columns subject, cluster, cluster_label, side, uptake,
        label (normal|reduced), subset (train|val|test) — see :func:`datxai.stats.uptake.merge_uptake`.

    Returns
    -------
    DataFrame: cluster, cluster_label, side, subset, test, n_reduced, n_normal,
    mean_reduced, sd_reduced, mean_normal, sd_normal, t, df, cohen_d, p, p_holm.
    """
    rows = []
    for subset in subsets:
        sub = table[table["subset"] == subset]
        for (cluster, lab, side), g in sub.groupby(["cluster", "cluster_label", "side"], sort=True):
            r = two_sample_ttest(g.loc[g["label"] == "reduced", "uptake"], g.loc[g["label"] == "normal", "uptake"], kind)
            rows.append({"cluster": cluster, "cluster_label": lab, "side": side, "subset": subset, **r})
            if np.isnan(r["p"]):
                log.warning("cluster %s (%s): t-test undefined in %s (n reduced %d, n normal %d)",
                            cluster, lab, subset, r["n_reduced"], r["n_normal"])
    cols = ["cluster", "cluster_label", "side", "subset", "test", "n_reduced", "n_normal", "mean_reduced",
            "sd_reduced", "mean_normal", "sd_normal", "t", "df", "cohen_d", "p", "p_holm"]
    return holm_table(rows, cols, "p", "p_holm", subsets)


def holm_table(rows: list[dict], columns: list[str], p_column: str, holm_column: str, subsets) -> pd.DataFrame:
    """The rows as a table of ``columns``, with ``holm_column`` = Holm-adjusted ``p_column`` within each subset."""
    out = pd.DataFrame(rows)
    if out.empty:
        return pd.DataFrame(columns=columns)
    out[holm_column] = np.nan
    for subset in subsets:
        sel = out["subset"] == subset
        out.loc[sel, holm_column] = holm(out.loc[sel, p_column].to_numpy())
    return out[columns]
