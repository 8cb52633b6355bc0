"""The companion study's (S2) checks of individual relevance maps.

* Mean relevance in the ipsilateral putamen per test case, by the same
  hottest-voxels analysis as the putamen SBR (:mod:`datxai.preprocess.sbr`):
  the large putamen ROI on the ipsilateral side (x < 0 after mirroring), the
  ``n`` voxels with the highest *image* value (the putamen's hottest voxels),
  and the mean *relevance* over them.
* Its sign as a classifier (positive = reduced), scored against the visual read.
* "Inconsistent" maps: misclassified cases whose putamen relevance has the
  sign of the true class (FN with positive, FP with negative relevance).
"""

from __future__ import annotations

import logging

import numpy as np

from ..checks import check_choice

logger = logging.getLogger(__name__)

SELECT_BY = ("image", "relevance")
OUTCOME_COLOURS = {"TN": "#1f77b4", "TP": "#d62728", "FN": "#ff7f0e", "FP": "#2ca02c"}


def putamen_roi(atlas, margin_mm: float) -> np.ndarray:
    """The large ipsilateral (left after mirroring) putamen ROI of the SBR analysis (bool, grid shape)."""
    from ..preprocess.sbr import striatal_rois

    return striatal_rois(atlas, margin_mm)[("Putamen", "L")]


def putamen_relevance(relevance: np.ndarray, image: np.ndarray, roi: np.ndarray, n: int,
                      select_by: str = "image") -> float:
    """Mean relevance over the ``n`` hottest voxels of ``roi``.

    ``select_by="image"`` picks the voxels with the highest image value (the
    putamen itself, as in the SBR analysis); ``"relevance"`` picks the highest
    relevance values. Ties are broken by voxel order (deterministic).
    """
    check_choice("group.putamen_select", select_by, SELECT_BY)
    roi = np.asarray(roi, bool)
    if relevance.shape != roi.shape or (select_by == "image" and image.shape != roi.shape):
        raise ValueError(f"relevance {relevance.shape}, image {np.shape(image)} and ROI {roi.shape} must share a shape")
    rel = np.asarray(relevance, np.float64)[roi]
    if rel.size == 0:
        raise ValueError("empty putamen ROI")
    key = np.asarray(image, np.float64)[roi] if select_by == "image" else rel
    n = min(int(n), rel.size)
    top = np.argsort(-key, kind="stable")[:n]
    return float(rel[top].mean())


def sign_classification(table) -> dict:
    """Score ``putamen_relevance > 0`` (= reduced) against ``label``; also the CNN for comparison.

    Returns ``{"putamen_sign": metrics, "cnn": metrics}``, each with n, tp, tn,
    fp, fn, accuracy, sensitivity, specificity, ppv, npv (fractions) and
    Wilson 95 % CIs (:func:`datxai.model.evaluate.classification_metrics`).
    """
    from ..model.evaluate import classification_metrics, confusion_counts

    y = (table["label"] == "reduced").to_numpy()
    out = {}
    for name, pred in (("putamen_sign", table["putamen_relevance"].to_numpy() > 0),
                       ("cnn", (table["predicted"] == "reduced").to_numpy())):
        out[name] = classification_metrics(**confusion_counts(y, pred))
    return out


def inconsistent_maps(table):
    """Misclassified cases with ``inconsistent`` yes|no (putamen relevance of the true class's sign)."""
    mis = table[table["outcome"].isin(["FN", "FP"])].copy()
    pos = mis["putamen_relevance"] > 0
    mis["inconsistent"] = np.where((mis["outcome"] == "FN") & pos | (mis["outcome"] == "FP") & ~pos, "yes", "no")
    return mis


def plot_histogram(table, path, bins: int = 30) -> None:
    """Histogram of ipsilateral putamen relevance, stacked by TN / TP / FN / FP."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .figures import save_figure

    v = table["putamen_relevance"].to_numpy(float)
    edges = np.histogram_bin_edges(v[np.isfinite(v)], bins=bins)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    groups = [oc for oc in OUTCOME_COLOURS if (table["outcome"] == oc).any()]
    ax.hist([table.loc[table["outcome"] == oc, "putamen_relevance"] for oc in groups], bins=edges, stacked=True,
            color=[OUTCOME_COLOURS[g] for g in groups],
            label=[f"{g} (n={int((table['outcome'] == g).sum())})" for g in groups])
    ax.axvline(0, color="k", lw=0.8, ls="--")
    ax.set_xlabel("mean relevance, ipsilateral (I) putamen, hottest voxels")
    ax.set_ylabel("test cases")
    ax.legend(frameon=False, fontsize=8)
    save_figure(fig, path)


def plot_misclassified(maps: dict, outcomes: dict, mean_tn: np.ndarray, mean_tp: np.ndarray, grid, z_mm: float,
                       path, putamen: dict | None = None) -> None:
    """Transversal slice of each misclassified case's map beside mean TN and mean TP (I left, C right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .figures import axial, save_figure, sym_limit

    panels = [("mean TN", mean_tn), ("mean TP", mean_tp)] + [
        (f"{s} ({outcomes[s]})" + (f"\nputamen {putamen[s]:+.3g}" if putamen else ""), m) for s, m in maps.items()]
    ncol = min(6, len(panels))
    nrow = int(np.ceil(len(panels) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(2.1 * ncol, 2.5 * nrow), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (title, m) in zip(axes.ravel(), panels):
        lim = sym_limit(m)
        axial(ax, m, grid, z_mm, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(title, fontsize=8)
    fig.suptitle(f"misclassified test cases (n={len(maps)}), z = {z_mm:.0f} mm; red = positive relevance", fontsize=9)
    save_figure(fig, path)
