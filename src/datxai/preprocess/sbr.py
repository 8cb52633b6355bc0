"""Specific binding ratio (SBR) by hottest-voxels analysis, per hemisphere.

For each striatal structure (putamen, caudate) and side, a *large ROI* is the
atlas structure (Harvard-Oxford probability >= 0.5) dilated by a margin (mm),
so that it contains the structure despite residual misregistration and
partial-volume blur, restricted to its hemisphere (x < 0 left, x > 0 right).
Voxels that both the dilated putamen and the dilated caudate would claim go to
the structure whose core is nearer (ties to the one with higher atlas
probability), so the ROIs do not overlap. The SBR is

    SBR = mean(hottest voxels in ROI) / reference - 1,

where the hottest voxels are the ``n`` highest-valued voxels of the ROI and
``n`` corresponds to a fixed volume (ml); ``reference`` is the scaling value of
the reference region (:mod:`datxai.preprocess.scale`), so on the scaled image
``SBR = mean(hottest) - 1``.
"""

from __future__ import annotations

import logging

import numpy as np

from ..checks import check_range

log = logging.getLogger(__name__)

STRUCTURES = ("Putamen", "Caudate")
SIDES = ("L", "R")


def n_hottest(volume_ml: float, voxel_ml: float) -> int:
    """Number of voxels that make up ``volume_ml``: the nearest integer, at least 1.

    At a coarse grid (fewer than 8 voxels) a note goes to the log: the
    hottest-voxels mean is then close to a maximum and noisier.
    """
    check_range("quantify.hottest_volume_ml", volume_ml, 0, low_inclusive=False)
    check_range("voxel volume (ml)", voxel_ml, 0, low_inclusive=False)
    n = max(1, int(round(volume_ml / voxel_ml)))
    if n < 8:
        log.info("hottest volume %.3g ml is %d voxel(s) of %.3g ml on this grid (coarse grid)", volume_ml, n, voxel_ml)
    return n


def _dilate(mask: np.ndarray, margin_mm: float, voxel_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Dilate by all voxels whose centre is within ``margin_mm`` of the mask; also return the distance map (mm)."""
    from scipy.ndimage import distance_transform_edt

    if not mask.any():
        return mask.copy(), np.full(mask.shape, np.inf)
    dist = distance_transform_edt(~mask, sampling=voxel_mm)
    return dist <= margin_mm + 1e-6, dist


def striatal_rois(atlas, margin_mm: float, threshold: float = 0.5) -> dict[tuple[str, str], np.ndarray]:
    """The large, non-overlapping hottest-voxel ROIs on the atlas grid.

    Parameters
    ----------
    atlas : :class:`datxai.atlas.AtlasOnGrid` (or any object with ``grid`` and
        ``prob(base, side)``).
    margin_mm : dilation of the atlas structure (mm, Euclidean).
    threshold : atlas probability that defines the structure's core.

    Returns
    -------
    dict ``{(structure, side): bool mask}`` for structure in ``Putamen``,
    ``Caudate`` and side in ``L``, ``R``.

    Raises
    ------
    ValueError
        When a core is empty on this grid.
    """
    grid = atlas.grid
    x = grid.coords_mm()[0]
    hemi = {"L": x < 0, "R": x > 0}
    rois = {}
    for side in SIDES:
        probs, dilated, dists = {}, {}, {}
        for s in STRUCTURES:
            probs[s] = atlas.prob(s, side)
            core = probs[s] >= threshold
            if not core.any():
                raise ValueError(f"atlas {s} ({side}) has no voxel with probability >= {threshold} on grid {grid.shape}")
            dilated[s], dists[s] = _dilate(core, margin_mm, grid.voxel_mm)
        both = dilated["Putamen"] & dilated["Caudate"]
        put_wins = (dists["Putamen"] < dists["Caudate"]) | (
            (dists["Putamen"] == dists["Caudate"]) & (probs["Putamen"] >= probs["Caudate"])
        )
        rois[("Putamen", side)] = dilated["Putamen"] & ~(both & ~put_wins) & hemi[side]
        rois[("Caudate", side)] = dilated["Caudate"] & ~(both & put_wins) & hemi[side]
    return rois


def hottest_mean(image: np.ndarray, roi: np.ndarray, n: int) -> float:
    """Mean of the ``n`` highest voxel values of ``image`` inside ``roi``.

    If the ROI holds fewer than ``n`` voxels, all of them are averaged (and a
    warning is logged).
    """
    vals = np.asarray(image)[np.asarray(roi, dtype=bool)].astype(np.float64)
    if vals.size == 0:
        raise ValueError("empty hottest-voxel ROI")
    if vals.size < n:
        log.warning("ROI has %d voxels, fewer than the %d hottest voxels asked for; using all", vals.size, n)
        n = vals.size
    return float(np.partition(vals, vals.size - n)[vals.size - n:].mean())


def striatal_sbr(scaled: np.ndarray, rois: dict, n: int, reference: float = 1.0) -> dict[str, float]:
    """SBR per structure and side: ``hottest_mean / reference - 1``.

    Parameters
    ----------
    scaled : image on the atlas grid; scaled (reference = 1) by default.
    rois : from :func:`striatal_rois`.
    n : number of hottest voxels (:func:`n_hottest`).
    reference : the reference value the image is to be divided by (1 for a scaled image).

    Returns
    -------
    ``{"putamen_L": ..., "putamen_R": ..., "caudate_L": ..., "caudate_R": ...}``
    (keys lower-case structure, anatomical side before any mirroring).
    """
    out = {}
    for (s, side), roi in rois.items():
        out[f"{s.lower()}_{side}"] = hottest_mean(scaled, roi, n) / reference - 1.0
    return out
