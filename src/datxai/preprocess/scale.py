"""Intensity scaling (S1): divide by a percentile of the reference region.

The reference region is the whole brain except the striata, pallidum,
thalamus, brain stem and ventricles (:attr:`datxai.atlas.AtlasOnGrid.reference_mask`),
a region of non-displaceable FP-CIT binding. After scaling, the reference
region's percentile is 1, so the scaled image is a ratio to non-specific
binding and a specific binding ratio reads ``SBR = value - 1``.
"""

from __future__ import annotations

import logging

import numpy as np

from ..checks import check_range

log = logging.getLogger(__name__)


def reference_value(image: np.ndarray, reference_mask: np.ndarray, percentile: float = 75.0) -> float:
    """The ``percentile`` (0-100) of the image's voxels inside ``reference_mask``.

    Parameters
    ----------
    image : 3-D array on the analysis grid (any units).
    reference_mask : boolean array of the same shape.
    percentile : in (0, 100]; numpy's default linear interpolation between
        order statistics.

    Raises
    ------
    ValueError
        For a shape mismatch, an empty mask, or a value that is not > 0
        (an image that cannot be scaled).
    """
    image = np.asarray(image)
    mask = np.asarray(reference_mask, dtype=bool)
    if image.shape != mask.shape:
        raise ValueError(f"image shape {image.shape} does not match the reference mask {mask.shape}")
    check_range("scale.reference_percentile", percentile, 0, 100, low_inclusive=False)
    if not mask.any():
        raise ValueError("the reference mask is empty: no voxel to scale by")
    value = float(np.percentile(image[mask].astype(np.float64), percentile))
    if not np.isfinite(value) or value <= 0:
        raise ValueError(
            f"the {percentile:g}th percentile of the reference region is {value:g} (must be > 0): "
            "is the image empty or not in MNI space?"
        )
    return value


def scale_image(image: np.ndarray, reference_mask: np.ndarray, percentile: float = 75.0) -> tuple[np.ndarray, float]:
    """Return ``(image / reference, reference)`` with ``reference`` from :func:`reference_value`.

    The scaled image is float32; the input is not modified.
    """
    ref = reference_value(image, reference_mask, percentile)
    return (np.asarray(image, dtype=np.float64) / ref).astype(np.float32), ref
