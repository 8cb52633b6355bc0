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
    ``{"mean_tp", "mean_tn", "heat": arrays float32, "n_tp", "n_tn": int,
    "basis_tp", "basis_tn": str}``.

    When a class has no correctly classified case (a weak classifier, e.g. the
    'nostriatum' setting on a small cohort) the heat map of the paper is
    undefined; the mean of that class is then taken over all its test cases
    (TP + FN for reduced, TN + FP for normal), ``basis_*`` says so and a warning
    is logged. Raises ValueError naming the setting when a class has no test case at all.
    """
    out = {}
    for oc, all_of_class in (("TP", ("TP", "FN")), ("TN", ("TN", "FP"))):
        subs = table.loc[table["outcome"] == oc, "subject"].astype(str).tolist()
        basis = f"correctly classified ({oc})"
        if not subs:
            subs = table.loc[table["outcome"].isin(all_of_class), "subject"].astype(str).tolist()
            basis = f"all test cases of the class ({' + '.join(all_of_class)}): no {oc} case"
            if not subs:
                raise ValueError(f"setting {setting!r}: no test case of the class of {oc}; the heat map is undefined "
                                 f"(outcomes: {table['outcome'].value_counts().to_dict()})")
            logger.warning("setting %r: no %s test case; mean over %s instead (%d cases)", setting, oc,
                           " + ".join(all_of_class), len(subs))
        out[f"mean_{oc.lower()}"], out[f"n_{oc.lower()}"] = mean_map(subs, load)
        out[f"basis_{oc.lower()}"] = basis
    out["heat"] = (out["mean_tp"].astype(np.float64) - out["mean_tn"]).astype(np.float32)
    logger.info("%s: heat map from %d TP and %d TN cases; range %.3g .. %.3g", setting, out["n_tp"], out["n_tn"],
                out["heat"].min(), out["heat"].max())
    return out
