"""Preprocessing of MNI-space images: scaling, putamen/caudate SBR, mirroring.

Per subject (:func:`scale_and_quantify`):

1. scale: divide by the 75th percentile of the reference region (S1);
2. quantify: SBR = hottest-voxels mean / reference - 1 in large putamen and
   caudate ROIs per hemisphere;
3. mirror: flip at the midsagittal plane when the right putamen SBR is lower,
   so that left = ipsilateral (I) and right = contralateral (C).
"""

from __future__ import annotations

import logging

import numpy as np

from .mirror import lateralise, mirror
from .scale import reference_value, scale_image
from .sbr import hottest_mean, n_hottest, striatal_rois, striatal_sbr

log = logging.getLogger(__name__)

__all__ = [
    "scale_and_quantify", "load_atlas", "reference_value", "scale_image", "n_hottest",
    "striatal_rois", "hottest_mean", "striatal_sbr", "mirror", "lateralise",
]


def load_atlas(bundle=None, grid=None):
    """The atlas on the analysis grid: from the rule's bundle file, else built for ``grid``."""
    from .. import atlas as _atlas

    if bundle is not None:
        return _atlas.load_bundle(bundle)
    if grid is None:
        raise ValueError("load_atlas: give the atlas bundle (atlas_grid.npz) or the grid")
    return _atlas.atlas_on_grid(grid)


_NOTED: set = set()


def _note_coarse_grid(atlas, n: int) -> None:
    """Log once per grid when the hottest volume is not small against the atlas putamen (coarse grids)."""
    grid = atlas.grid
    if grid in _NOTED:
        return
    _NOTED.add(grid)
    core = int(min((atlas.prob("Putamen", s) >= 0.5).sum() for s in ("L", "R")))
    if n > 0.5 * core:
        log.info("coarse grid (%.3g mm): the %d hottest voxels (%.3g ml) are %d%% of the atlas putamen (%d voxels); "
                 "the SBR approaches a whole-putamen mean and is lower than at the paper's 2 mm grid",
                 grid.voxel_mm, n, n * grid.voxel_ml, round(100 * n / max(core, 1)), core)


def scale_and_quantify(image: np.ndarray, atlas, percentile: float = 75.0, margin_mm: float = 6.0,
                       hottest_ml: float = 4.0) -> tuple[np.ndarray, dict]:
    """Scale, quantify and mirror one MNI-space image.

    Parameters
    ----------
    image : ``(nx, ny, nz)`` normalised SPECT on ``atlas.grid`` (counts, any scale).
    atlas : :class:`datxai.atlas.AtlasOnGrid` on the same grid.
    percentile : reference-region percentile used for scaling (``scale.reference_percentile``).
    margin_mm : dilation of the atlas striatal structures (``quantify.putamen_margin_mm``).
    hottest_ml : volume of the hottest voxels (``quantify.hottest_volume_ml``).

    Returns
    -------
    (scaled, record): ``scaled`` float32, divided by the reference and mirrored
    if needed (left = ipsilateral); ``record`` with ``reference_p75`` (the
    scaling value, in the input's units, whatever the percentile),
    ``sbr_putamen_ipsi/contra``, ``sbr_caudate_ipsi/contra``, ``mirrored``,
    ``lower_putamen_side``, the per-side values before mirroring
    (``sbr_putamen_L`` ...), ``n_hottest`` and ``hottest_ml_effective``.
    """
    grid = atlas.grid
    if tuple(image.shape) != tuple(grid.shape):
        raise ValueError(f"image shape {image.shape} does not match the analysis grid {grid.shape}")
    scaled, ref = scale_image(image, atlas.reference_mask, percentile)
    n = n_hottest(hottest_ml, grid.voxel_ml)
    _note_coarse_grid(atlas, n)
    per_side = striatal_sbr(scaled, striatal_rois(atlas, margin_mm), n)
    out, lat = lateralise(scaled, per_side)
    record = {"reference_p75": ref, "reference_percentile": float(percentile), "n_hottest": n,
              "hottest_ml_effective": n * grid.voxel_ml, **lat,
              **{f"sbr_{k}": float(v) for k, v in per_side.items()}}
    log.info("reference %.4g, putamen SBR I %.3f C %.3f, mirrored %s", ref,
             record["sbr_putamen_ipsi"], record["sbr_putamen_contra"], record["mirrored"])
    return out, record
