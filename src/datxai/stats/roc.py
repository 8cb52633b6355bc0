"""ROC analysis of one continuous marker: AUC, DeLong confidence interval, Mann-Whitney P.

Convention: the *positive* class is ``reduced`` (visual read). A marker whose
*lower* values indicate ``reduced`` (cluster uptake, putamen SBR) is analysed with
``direction="lower"``: the score is the negated marker, so that the AUC is
P(marker of a reduced subject < marker of a normal subject) + 0.5 P(tie).

The variance of the AUC is DeLong's (DeLong, DeLong & Clarke-Pearson 1988,
Biometrics 44:837) structural-component estimator, computed in O(n log n) with
mid-ranks as in Sun & Xu (2014, IEEE Signal Process Lett 21:1389).
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import stats

from ..checks import check_choice

log = logging.getLogger(__name__)

DIRECTIONS = {"lower": "lower value = reduced", "higher": "higher value = reduced"}


def _check_direction(direction: str) -> None:
    check_choice("direction", direction, DIRECTIONS)


def _split_scores(values, positive, direction: str):
    """Scores oriented so that higher = more likely positive; returns (pos, neg) float64 arrays."""
    _check_direction(direction)
    values = np.asarray(values, dtype=float)
    positive = np.asarray(positive, dtype=bool)
    if values.shape != positive.shape or values.ndim != 1:
        raise ValueError(f"values {values.shape} and positive {positive.shape} must be 1-D of equal length")
    if not np.all(np.isfinite(values)):
        raise ValueError("values: contains NaN or Inf")
    scores = -values if direction == "lower" else values
    return scores[positive], scores[~positive]


def delong_auc(pos, neg) -> tuple[float, float]:
    """AUC and its DeLong variance from scores of positives and negatives (higher = positive).

    Parameters
    ----------
    pos, neg : array_like, shapes (m,), (n,)
        Scores of the m positive and n negative cases; ties count one half.

    Returns
    -------
    auc : float
        P(pos > neg) + 0.5 P(pos == neg), the Mann-Whitney statistic divided by m n.
    var : float
        DeLong's variance estimate S10 / m + S01 / n (NaN if m < 2 or n < 2).

    Notes
    -----
    Sun & Xu (2014), Algorithm "fast DeLong": with Tz the mid-ranks in the pooled
    sample and Tx, Ty the mid-ranks within each sample, the structural components
    are V10_i = (Tz_i - Tx_i) / n and V01_j = 1 - (Tz_j - Ty_j) / m.
    """
    pos = np.asarray(pos, dtype=float).ravel()
    neg = np.asarray(neg, dtype=float).ravel()
    m, n = pos.size, neg.size
    if m == 0 or n == 0:
        raise ValueError(f"AUC needs both classes, got {m} positive and {n} negative cases")
    tz = stats.rankdata(np.concatenate([pos, neg]))  # mid-ranks in the pooled sample
    tx = stats.rankdata(pos)
    ty = stats.rankdata(neg)
    auc = (tz[:m].sum() - m * (m + 1) / 2.0) / (m * n)
    v10 = (tz[:m] - tx) / n
    v01 = 1.0 - (tz[m:] - ty) / m
    if m < 2 or n < 2:
        return float(auc), float("nan")
    var = np.var(v10, ddof=1) / m + np.var(v01, ddof=1) / n
    return float(auc), float(var)


def roc_auc(values, positive, direction: str = "lower", alpha: float = 0.05) -> dict:
    """AUC of a marker for ``positive`` with a DeLong (1 - alpha) CI and a Mann-Whitney P.

    Parameters
    ----------
    values : array_like (N,)
        The marker (e.g. mean scaled uptake of one cluster).
    positive : array_like of bool (N,)
        True for ``reduced``.
    direction : {"lower", "higher"}
        Which marker values indicate ``reduced``.

    Returns
    -------
    dict with n_reduced, n_normal, auc, auc_se, auc_ci_low, auc_ci_high (normal
    approximation on the AUC scale, clipped to [0, 1]), p (two-sided Mann-Whitney U,
    the test of AUC = 0.5), u (U of the positive class on the oriented score),
    direction (words).
    """
    pos, neg = _split_scores(values, positive, direction)
    auc, var = delong_auc(pos, neg)
    se = float(np.sqrt(var)) if np.isfinite(var) else float("nan")
    z = stats.norm.ppf(1 - alpha / 2)
    mw = stats.mannwhitneyu(pos, neg, alternative="two-sided")
    return {
        "n_reduced": int(pos.size),
        "n_normal": int(neg.size),
        "auc": auc,
        "auc_se": se,
        "auc_ci_low": float(np.clip(auc - z * se, 0, 1)),
        "auc_ci_high": float(np.clip(auc + z * se, 0, 1)),
        "p": float(mw.pvalue),
        "u": float(mw.statistic),
        "test": "Mann-Whitney U, two-sided; CI DeLong",
        "direction": DIRECTIONS[direction],
    }


def roc_curve(values, positive, direction: str = "lower") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Empirical ROC curve.

    Returns ``(fpr, tpr, thresholds)``, each of shape (k + 1,) for k distinct marker
    values, starting at (0, 0). Threshold t classifies ``reduced`` when the marker
    is <= t (direction "lower") or >= t ("higher"); the first threshold classifies nobody.
    """
    pos, neg = _split_scores(values, positive, direction)
    if pos.size == 0 or neg.size == 0:
        raise ValueError(f"ROC needs both classes, got {pos.size} positive and {neg.size} negative cases")
    cuts = np.unique(np.concatenate([pos, neg]))[::-1]  # oriented scores, descending
    tpr = np.concatenate([[0.0], (pos[None, :] >= cuts[:, None]).mean(axis=1)])
    fpr = np.concatenate([[0.0], (neg[None, :] >= cuts[:, None]).mean(axis=1)])
    thr = np.concatenate([[np.inf], cuts])
    thresholds = -thr if direction == "lower" else thr
    return fpr, tpr, thresholds


def cluster_roc(table, subsets=("train", "test"), direction: str = "lower", alpha: float = 0.05):
    """ROC of uptake for reduced vs normal per cluster and subset.

    Parameters
    ----------
    table : DataFrame
        Long format with cluster, cluster_label, side, uptake, label (normal|reduced), subset.

    Returns
    -------
    DataFrame: cluster, cluster_label, side, subset, n_reduced, n_normal, auc, auc_se,
    auc_ci_low, auc_ci_high, p, u, test, direction. Rows where a class is missing
    in a subset carry NaNs.
    """
    import pandas as pd

    rows = []
    for subset in subsets:
        sub = table[table["subset"] == subset]
        for (cluster, lab, side), g in sub.groupby(["cluster", "cluster_label", "side"], sort=True):
            pos = (g["label"] == "reduced").to_numpy()
            base = {"cluster": cluster, "cluster_label": lab, "side": side, "subset": subset}
            if pos.all() or not pos.any():
                log.warning("cluster %s (%s): ROC undefined in %s, one class only", cluster, lab, subset)
                rows.append({**base, "n_reduced": int(pos.sum()), "n_normal": int((~pos).sum()),
                             "direction": DIRECTIONS[direction]})
                continue
            rows.append({**base, **roc_auc(g["uptake"].to_numpy(), pos, direction, alpha)})
    cols = ["cluster", "cluster_label", "side", "subset", "n_reduced", "n_normal", "auc", "auc_se",
            "auc_ci_low", "auc_ci_high", "p", "u", "test", "direction"]
    return pd.DataFrame(rows, columns=cols)
