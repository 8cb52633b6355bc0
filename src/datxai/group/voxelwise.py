"""The voxelwise comparator of the relevance clusters (issue 18): would a plain mass-univariate test find the same?

For one subset of subjects (train or test) the scaled, mirrored images of the
reduced and the normal group are compared voxel by voxel with the two-sample
t statistic of an ordinary least-squares GLM (intercept + group indicator;
the pooled-variance Student t, as SPM's two-sample design):
``t > 0`` where the reduced group's uptake is higher, ``t < 0`` where it is lower.
Family-wise error over the brain mask is controlled by max-T permutation
(Nichols & Holmes 2002): the group labels are permuted ``n_perm`` times
(seeded), the largest |t| over the brain is recorded each time, and a voxel is
significant when ``|t|`` exceeds the threshold that at most ``alpha`` of that
null distribution reaches. The permutations and the t statistic are
nilearn's :func:`nilearn.mass_univariate.permuted_ols`; this module chooses the
design, the mask, the threshold and the clusters.

Clusters: the significant voxels *outside the striatum box* (the question is
extrastriatal, as for the nostriatum relevance clusters; the box's own,
expected, striatal difference would otherwise swallow its neighbours) form
clusters by ``connectivity``, each holding one sign of t, smaller than
``min_cluster_ml`` dropped, labelled with the atlas exactly like the relevance
clusters (:func:`datxai.group.clusters.describe_clusters`: the ``peak_heat``
and ``mean_heat`` columns hold t, ``threshold`` the FWE |t| threshold), so that
the validation against the synthetic truth and the uptake statistics read them
unchanged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..grid import Grid

logger = logging.getLogger(__name__)


@dataclass
class VoxelwiseResult:
    """t and FWE p maps on the grid (NaN outside the tested mask), the |t| threshold and the null maxima."""

    t: np.ndarray
    p_fwe: np.ndarray
    threshold: float
    h0_max_t: np.ndarray
    n_reduced: int
    n_normal: int
    n_perm: int
    alpha: float

    @property
    def significant(self) -> np.ndarray:
        """Voxels whose |t| exceeds the FWE threshold (bool; False outside the mask)."""
        return np.nan_to_num(np.abs(self.t), nan=0.0) > self.threshold

    def summary(self) -> dict:
        t = self.t[np.isfinite(self.t)]
        return {"n_reduced": self.n_reduced, "n_normal": self.n_normal, "n_perm": self.n_perm, "alpha": self.alpha,
                "fwe_threshold_abs_t": self.threshold, "min_t": float(t.min()), "max_t": float(t.max()),
                "n_tested_voxels": int(t.size), "n_significant_voxels": int(self.significant.sum())}


def fwe_threshold(h0_max_t: np.ndarray, alpha: float) -> float:
    """The |t| above which a voxel's max-T permutation p-value is at most ``alpha``.

    With the observed labelling counted as one of the ``n_perm + 1`` (nilearn's
    p = (1 + #{h0 >= |t|}) / (n_perm + 1)), p <= alpha allows at most
    ``k = floor(alpha (n_perm + 1)) - 1`` null maxima at or above |t|: the
    threshold is the (k+1)-th largest null maximum, exceeded strictly.
    """
    from ..checks import check_range

    h0 = np.sort(np.asarray(h0_max_t, float).ravel())[::-1]
    check_range("group.voxelwise.alpha", alpha, 0, 1, low_inclusive=False, high_inclusive=False)
    k = int(np.floor(alpha * (h0.size + 1) + 1e-9)) - 1
    if k < 0:
        raise ValueError(f"{h0.size} permutations cannot reach alpha = {alpha} (at least {int(np.ceil(1 / alpha)) - 1} "
                         "are needed): raise group.voxelwise.n_perm")
    return float(h0[k])


def voxelwise_ttest(images: np.ndarray, reduced: np.ndarray, mask: np.ndarray, n_perm: int = 1000, seed: int = 0,
                    alpha: float = 0.05, n_jobs: int = 1) -> VoxelwiseResult:
    """Two-sample t (reduced - normal) of ``images`` (N, nx, ny, nz) in ``mask``, max-T FWE by permutation.

    ``reduced``: bool per image (True = reduced group). Both groups need at least two
    images. Same inputs and ``seed``, same result.
    """
    from nilearn.mass_univariate import permuted_ols

    images = np.asarray(images)
    reduced = np.asarray(reduced, bool)
    mask = np.asarray(mask, bool)
    if images.ndim != 4 or images.shape[1:] != mask.shape:
        raise ValueError(f"images {images.shape} do not match the mask {mask.shape} (expected (N, *mask.shape))")
    if reduced.shape != (images.shape[0],):
        raise ValueError(f"{reduced.size} group labels for {images.shape[0]} images")
    n_red, n_nor = int(reduced.sum()), int((~reduced).sum())
    if min(n_red, n_nor) < 2:
        raise ValueError(f"the voxelwise test needs at least 2 images per group, got {n_red} reduced and {n_nor} normal")
    if not mask.any():
        raise ValueError("the voxelwise test's mask is empty")
    from ..checks import check_range

    check_range("group.voxelwise.n_perm", n_perm, 1)
    y = images[:, mask].astype(np.float64)
    finite = np.isfinite(y).all(axis=0)
    if not finite.all():
        raise ValueError(f"{int((~finite).sum())} voxels of the mask hold NaN or inf in some image")
    out = permuted_ols(reduced[:, None].astype(np.float64), y, model_intercept=True, n_perm=int(n_perm),
                       two_sided_test=True, random_state=int(seed), n_jobs=int(n_jobs), verbose=0, output_type="dict")
    t = np.full(mask.shape, np.nan)
    p = np.full(mask.shape, np.nan)
    t[mask] = out["t"][0]
    p[mask] = 10.0 ** -out["logp_max_t"][0]
    h0 = np.asarray(out["h0_max_t"]).ravel()
    thr = fwe_threshold(h0, alpha)
    res = VoxelwiseResult(t=t, p_fwe=p, threshold=thr, h0_max_t=h0, n_reduced=n_red, n_normal=n_nor,
                          n_perm=int(n_perm), alpha=float(alpha))
    logger.info("voxelwise t (reduced %d - normal %d), %d voxels, %d permutations: FWE |t| > %.3f at alpha %.3g; "
                "t from %.2f to %.2f; %d significant voxels", n_red, n_nor, int(mask.sum()), n_perm, thr, alpha,
                np.nanmin(t), np.nanmax(t), int(res.significant.sum()))
    return res


def comparator_clusters(result: VoxelwiseResult, cluster_mask: np.ndarray, grid: Grid, connectivity: int = 26,
                        min_cluster_ml: float = 1.0) -> np.ndarray:
    """Clusters (int32 label image, 1..K by size) of the significant voxels inside ``cluster_mask``, one sign each."""
    from .clusters import label_supra

    supra = result.significant & np.asarray(cluster_mask, bool)
    return label_supra(np.nan_to_num(result.t, nan=0.0), supra, grid, connectivity, min_cluster_ml, sign="both")


# ------------------------------------------------------------------ the methods side by side

METHOD_COLUMNS = ("method", "cluster", "label", "side", "volume_ml", "peak_heat", "peak_x", "peak_y", "peak_z",
                  "dist_striatum_mm", "dist_box_mm", "frac_in_box")


def distances_mm(labels: np.ndarray, target: np.ndarray, voxel_mm: float) -> dict[int, float]:
    """Per cluster of ``labels``: the smallest Euclidean distance (mm, voxel centres) from any of its voxels to
    ``target`` (bool); 0 where the cluster touches it; NaN when ``target`` is empty."""
    from scipy import ndimage

    target = np.asarray(target, bool)
    ids = [int(i) for i in np.unique(labels) if i > 0]
    if not target.any():
        return {i: float("nan") for i in ids}
    dist = ndimage.distance_transform_edt(~target, sampling=[voxel_mm] * 3)
    return {i: float(dist[labels == i].min()) for i in ids}


def methods_table(tables: dict, label_images: dict, striatum: np.ndarray, box: np.ndarray, voxel_mm: float):
    """Every cluster of every method (``{method: cluster table}`` with matching label images) in one long table
    with its distance to the striatum (atlas caudate, putamen, accumbens) and to the striatum box, and the share
    of its voxels inside the box: the first measure of how far from the striatal signal a finding lies."""
    import pandas as pd

    rows = []
    for method, table in tables.items():
        lab = np.asarray(label_images[method])
        d_str = distances_mm(lab, striatum, voxel_mm)
        d_box = distances_mm(lab, box, voxel_mm)
        for r in table.itertuples():
            c = int(r.cluster)
            m = lab == c
            rows.append({"method": method, "cluster": c, "label": r.label, "side": r.side, "volume_ml": r.volume_ml,
                         "peak_heat": r.peak_heat, "peak_x": r.peak_x, "peak_y": r.peak_y, "peak_z": r.peak_z,
                         "dist_striatum_mm": d_str.get(c, float("nan")), "dist_box_mm": d_box.get(c, float("nan")),
                         "frac_in_box": float(np.asarray(box, bool)[m].mean()) if m.any() else float("nan")})
    return pd.DataFrame(rows, columns=list(METHOD_COLUMNS))


def side_by_side(long, methods=None) -> "object":
    """Region (main atlas label and side) x method: the clusters each method found there (``c<id> <ml> ml``).

    ``methods``: the columns, in order (default: those of ``long``); a method without clusters keeps its
    (empty) column."""
    import pandas as pd

    methods = list(dict.fromkeys(long["method"])) if methods is None else list(methods)
    if long.empty:
        return pd.DataFrame(columns=["label", "side", *methods, "n_methods", "min_dist_striatum_mm"])
    out = []
    for (label, side), g in long.groupby(["label", "side"], sort=True):
        row = {"label": label, "side": side}
        for m in methods:
            gm = g[g["method"] == m]
            row[m] = "; ".join(f"c{int(r.cluster)} {r.volume_ml:.1f} ml" for r in gm.itertuples())
        row["n_methods"] = int(sum(bool(row[m]) for m in methods))
        row["min_dist_striatum_mm"] = float(g["dist_striatum_mm"].min())
        out.append(row)
    return pd.DataFrame(out).sort_values(["n_methods", "label", "side"], ascending=[False, True, True],
                                         ignore_index=True)
