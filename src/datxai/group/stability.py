"""Do the relevance clusters survive another training seed? (issue 21, seed stability)

With ``train.repeats > 1`` every repeat's net is explained by LRP and its group
heat map thresholded into clusters exactly as the study's (repeat 0). Here:

* the **Dice overlap** of the cluster masks (all clusters of a setting as one
  mask) between every pair of repeats, ``2 |A & B| / (|A| + |B|)`` (1 when both
  are empty: two nets that agree there is nothing);
* the **voxel stability map**: the fraction of repeats in which a voxel is in a
  cluster;
* the clusters of the **mean heat map over the repeats** (the same threshold rule:
  the percentile outside the box, :func:`datxai.group.clusters.find_clusters`),
  with each cluster's mean stability: a cluster seen by most seeds is a property
  of the data, one seen by a single seed a property of that training.
"""

from __future__ import annotations

import itertools

import numpy as np


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient of two masks (bool or label images: > 0 is in); 1.0 when both are empty."""
    a, b = np.asarray(a) > 0, np.asarray(b) > 0
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def pairwise_dice(masks: dict) -> "object":
    """``{repeat: mask}`` -> one row per pair of repeats: ``repeat_a``, ``repeat_b``, ``dice``, the volumes
    (voxels) of both and of their overlap."""
    import pandas as pd

    rows = []
    for (ra, a), (rb, b) in itertools.combinations(sorted(masks.items()), 2):
        a, b = np.asarray(a) > 0, np.asarray(b) > 0
        rows.append({"repeat_a": ra, "repeat_b": rb, "dice": dice(a, b), "voxels_a": int(a.sum()),
                     "voxels_b": int(b.sum()), "voxels_both": int((a & b).sum())})
    return pd.DataFrame(rows, columns=["repeat_a", "repeat_b", "dice", "voxels_a", "voxels_b", "voxels_both"])


def stability_map(masks) -> np.ndarray:
    """Fraction (0-1, float32) of the masks in which each voxel is in a cluster."""
    masks = [np.asarray(m) > 0 for m in masks]
    if not masks:
        raise ValueError("stability needs at least one repeat's clusters")
    return (np.sum(masks, axis=0) / len(masks)).astype(np.float32)


def cluster_stability(labels: np.ndarray, stability: np.ndarray) -> dict[int, float]:
    """Mean stability over each cluster's voxels."""
    return {int(c): float(stability[labels == c].mean()) for c in np.unique(labels) if c > 0}
