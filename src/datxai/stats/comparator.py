"""The conventional comparator: ipsilateral putamen SBR as a classifier of the visual read.

The cut-off is chosen on the training set by Youden's J (sensitivity + specificity
- 1); the classifier calls ``reduced`` when the SBR is *below* the cut-off. The
cut-off is the midpoint between two adjacent distinct training values, so it
never coincides with an observed value.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..intervals import wilson_ci  # one Wilson interval for the package (statsmodels)

log = logging.getLogger(__name__)

METRICS = ("accuracy", "sensitivity", "specificity", "ppv", "npv")


def youden_cutoff(values, positive) -> tuple[float, float]:
    """Cut-off maximising Youden's J for "positive if value < cut-off".

    Parameters
    ----------
    values : array_like (N,)   marker (e.g. putamen SBR); lower = positive (reduced)
    positive : array_like of bool (N,)

    Returns
    -------
    (cutoff, J). Candidates are the midpoints between adjacent distinct values (and
    half a gap beyond the extremes); ties in J go to the lowest cut-off.
    """
    x = np.asarray(values, dtype=float)
    y = np.asarray(positive, dtype=bool)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError("values and positive must be 1-D of equal length")
    if not np.all(np.isfinite(x)):
        raise ValueError("values: contains NaN or Inf")
    if y.all() or not y.any():
        raise ValueError(f"Youden cut-off needs both classes, got {int(y.sum())} positive of {y.size}")
    u = np.unique(x)
    gap = np.diff(u).min() if u.size > 1 else 1.0
    cands = np.concatenate([[u[0] - gap / 2], (u[:-1] + u[1:]) / 2, [u[-1] + gap / 2]])
    call = x[None, :] < cands[:, None]  # (n_cands, N)
    sens = (call & y).sum(axis=1) / y.sum()
    spec = (~call & ~y).sum(axis=1) / (~y).sum()
    j = sens + spec - 1
    best = int(np.argmax(j))  # first maximum = lowest cut-off
    return float(cands[best]), float(j[best])


def binary_metrics(positive, predicted, alpha: float = 0.05) -> dict:
    """Confusion counts and accuracy, sensitivity, specificity, PPV, NPV (fractions) with Wilson CIs."""
    y = np.asarray(positive, dtype=bool)
    p = np.asarray(predicted, dtype=bool)
    tp, tn = int((y & p).sum()), int((~y & ~p).sum())
    fp, fn = int((~y & p).sum()), int((y & ~p).sum())
    parts = {"accuracy": (tp + tn, y.size), "sensitivity": (tp, tp + fn), "specificity": (tn, tn + fp),
             "ppv": (tp, tp + fp), "npv": (tn, tn + fn)}
    out = {"n": int(y.size), "tp": tp, "tn": tn, "fp": fp, "fn": fn}
    for name, (k, n) in parts.items():
        lo, hi = wilson_ci(k, n, 1.0 - alpha)
        out.update({name: k / n if n else float("nan"), f"{name}_ci_low": lo, f"{name}_ci_high": hi})
    return out


def sbr_comparator(table: pd.DataFrame, column: str = "sbr_putamen_ipsi", subsets=("train", "test")) -> pd.DataFrame:
    """Youden cut-off of ``column`` on the training subset, applied to every subset.

    Parameters
    ----------
    table : DataFrame with subject, label (normal|reduced), subset, and ``column``.

    Returns
    -------
    DataFrame, one row per subset: method, variable, cutoff, rule, youden_j_train,
    subset, n, tp, tn, fp, fn, accuracy ... npv with _ci_low/_ci_high (Wilson), ci_method.
    """
    for c in ("label", "subset", column):
        if c not in table.columns:
            raise ValueError(f"sbr comparator: column {c!r} missing; have {list(table.columns)}")
    train = table[table["subset"] == "train"]
    cutoff, j = youden_cutoff(train[column].to_numpy(), (train["label"] == "reduced").to_numpy())
    log.info("Youden cut-off of %s on %d training subjects: %.4f (J = %.3f)", column, len(train), cutoff, j)
    rows = []
    for subset in subsets:
        s = table[table["subset"] == subset]
        m = binary_metrics((s["label"] == "reduced").to_numpy(), (s[column] < cutoff).to_numpy())
        rows.append({"method": "putamen SBR cut-off", "variable": column, "cutoff": cutoff,
                     "rule": f"reduced if {column} < cutoff", "youden_j_train": j, "subset": subset, **m,
                     "ci_method": "Wilson score"})
    return pd.DataFrame(rows)
