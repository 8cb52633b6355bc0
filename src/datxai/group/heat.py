"""Group relevance maps (S1): mean relevance of TP and of TN test cases, heat = mean(TP) - mean(TN).

Maps are averaged with a running float64 sum, so memory does not grow with n.
Positive heat = relevance higher in correctly classified reduced than in
correctly classified normal scans.
"""

from __future__ import annotations

import logging
from typing import Callable, Iterable

import numpy as np

logger = logging.getLogger(__name__)


def mean_map(subjects: Iterable[str], load: Callable[[str], np.ndarray]) -> tuple[np.ndarray, int]:
    """Voxel-wise mean of ``load(subject)`` over ``subjects``; returns ``(mean float32, n)``.

    Raises ValueError when ``subjects`` is empty or shapes differ (naming the subject).
    """
    total, n, shape = None, 0, None
    for s in subjects:
        m = np.asarray(load(s), dtype=np.float64)
        if total is None:
            total, shape = np.zeros_like(m), m.shape
        elif m.shape != shape:
            raise ValueError(f"relevance map of {s} has shape {m.shape}, others {shape}")
        total += m
        n += 1
    if n == 0:
        raise ValueError("no maps to average")
    return (total / n).astype(np.float32), n


def group_maps(table, load: Callable[[str], np.ndarray], setting: str = "") -> dict:
    """Mean TP, mean TN and heat = mean(TP) - mean(TN).

    Parameters
    ----------
    table : relevance table with ``subject`` and ``outcome`` (TP | TN | FP | FN).
    load : subject -> relevance map on the full grid.

    Returns
    -------
    ``{"mean_tp", "mean_tn", "heat": arrays float32, "n_tp", "n_tn": int}``.
    Raises ValueError naming the setting when there is no TP or no TN case
    (the heat map is then undefined).
    """
    out = {}
    for oc in ("TP", "TN"):
        subs = table.loc[table["outcome"] == oc, "subject"].astype(str).tolist()
        if not subs:
            raise ValueError(f"setting {setting!r}: no {oc} test case, so mean({oc}) and the heat map are undefined "
                             f"(outcomes: {table['outcome'].value_counts().to_dict()})")
        out[f"mean_{oc.lower()}"], out[f"n_{oc.lower()}"] = mean_map(subs, load)
    out["heat"] = (out["mean_tp"].astype(np.float64) - out["mean_tn"]).astype(np.float32)
    logger.info("%s: heat map from %d TP and %d TN cases; range %.3g .. %.3g", setting, out["n_tp"], out["n_tn"],
                out["heat"].min(), out["heat"].max())
    return out
