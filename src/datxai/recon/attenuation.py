"""First-order Chang attenuation correction (Chang 1978, IEEE Trans Nucl Sci 25:638).

Each voxel of the uncorrected FBP image is multiplied by

    C(x, y) = 1 / ( (1 / M) * sum_theta exp(-mu * L_theta(x, y)) )

where ``L_theta`` is the length (mm) of body between the voxel and the body
outline along the direction the photon travels towards the detector at
``theta``, ``d(theta) = (-sin theta, -cos theta)`` (:mod:`datxai.geometry`),
and ``M`` directions are spread uniformly over 360 degrees. The body outline
is a threshold of the uncorrected image (filled per slice, largest component);
attenuation is assumed uniform inside it. The paper used no correction; this
is an option (``reconstruct.attenuation_correction``).
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage

from ..checks import check_range
from ..geometry import bin_direction, detector_direction

log = logging.getLogger(__name__)


def body_mask(volume: np.ndarray, threshold: float = 0.1) -> np.ndarray:
    """Body outline of a native volume ``(nx, ny, nz)``: ``volume > threshold * max``.

    Holes are filled slice by slice (axis 2) and only the largest 3-D
    connected component is kept. Returns a bool array of the same shape.
    """
    check_range("reconstruct.body_threshold", threshold, 0, 1, low_inclusive=False, high_inclusive=False)
    vol = np.asarray(volume, dtype=np.float32)
    if vol.ndim != 3:
        raise ValueError(f"expected a 3-D volume, got shape {vol.shape}")
    peak = float(vol.max())
    if not peak > 0:
        raise ValueError("cannot find a body outline in an image without positive values")
    mask = vol > threshold * peak
    for k in range(mask.shape[2]):
        mask[:, :, k] = ndimage.binary_fill_holes(mask[:, :, k])
    labels, n = ndimage.label(mask)
    if n > 1:
        sizes = np.bincount(labels.ravel())[1:]
        mask = labels == (1 + int(np.argmax(sizes)))
    return mask


def exit_path_lengths(mask: np.ndarray, theta_deg: float, voxel_mm: float) -> np.ndarray:
    """Length (mm) of ``mask`` from each voxel centre to infinity along ``d(theta)``.

    ``mask`` is ``(nx, ny)`` or ``(nx, ny, nz)`` (axis 0 = x, axis 1 = y, in-plane
    voxels of ``voxel_mm``, centre of rotation at the array centre). Computed by
    resampling the mask on a grid rotated so that ``d(theta)`` is an axis
    (spacing one voxel, linear interpolation), a reverse cumulative sum
    along it, and resampling back.
    """
    m = np.asarray(mask, dtype=np.float32)
    squeeze = m.ndim == 2
    if squeeze:
        m = m[..., None]
    nx, ny, nz = m.shape
    d = detector_direction(theta_deg)  # towards the detector
    e = bin_direction(theta_deg)  # along the detector (s axis)
    cx, cy = (nx - 1) / 2.0, (ny - 1) / 2.0
    h = 1.0  # sampling step of the rotated grid, in voxels
    half = 0.5 * np.hypot(nx, ny) + 1.0
    u = np.arange(-half, half + h / 2, h)  # coordinate along e and along d
    uu, vv, zz = np.meshgrid(u, u, np.arange(nz), indexing="ij")
    xs = cx + uu * e[0] + vv * d[0]
    ys = cy + uu * e[1] + vv * d[1]
    rot = ndimage.map_coordinates(m, [xs, ys, zz], order=1, mode="constant", cval=0.0)
    # integral from v to +inf along d: trapezoid sum of the samples beyond v, plus half of v
    rev = np.cumsum(rot[:, ::-1, :], axis=1)[:, ::-1, :]
    length = h * (rev - 0.5 * rot)
    # back to the voxel grid: voxel (x, y) sits at u = p.e, v = p.d (in rotated-grid indices)
    X, Y, Z = np.meshgrid(np.arange(nx) - cx, np.arange(ny) - cy, np.arange(nz), indexing="ij")
    ui = (X * e[0] + Y * e[1] + half) / h
    vi = (X * d[0] + Y * d[1] + half) / h
    out = ndimage.map_coordinates(length, [ui, vi, Z], order=1, mode="nearest") * voxel_mm
    return out[..., 0] if squeeze else out


def chang_factors(mask: np.ndarray, mu_per_mm: float, voxel_mm: float, n_directions: int = 32) -> np.ndarray:
    """First-order Chang factors ``C >= 1`` inside ``mask`` (1 outside); same shape as ``mask``."""
    check_range("mu_per_mm", mu_per_mm, 0)
    check_range("n_directions", n_directions, 4)
    mask = np.asarray(mask, bool)
    mean_att = np.zeros(mask.shape, np.float64)
    for theta in np.arange(n_directions) * 360.0 / n_directions:
        mean_att += np.exp(-mu_per_mm * exit_path_lengths(mask, theta, voxel_mm))
    mean_att /= n_directions
    return np.where(mask, 1.0 / np.maximum(mean_att, 1e-12), 1.0).astype(np.float32)


def chang_correct(volume: np.ndarray, voxel_mm: float, mu_per_cm: float, threshold: float = 0.1,
                  n_directions: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Apply first-order Chang correction to a native volume ``(nx, ny, nz)``.

    Parameters
    ----------
    volume : uncorrected FBP image (native space, value units).
    voxel_mm : in-plane voxel size (mm).
    mu_per_cm : linear attenuation coefficient (1/cm), uniform inside the body.
    threshold : body outline at this fraction of the image maximum.
    n_directions : directions averaged over 360 degrees.

    Returns
    -------
    corrected volume (float32), body mask (bool).
    """
    mask = body_mask(volume, threshold)
    factors = chang_factors(mask, mu_per_cm / 10.0, voxel_mm, n_directions)
    log.info("Chang correction: mu %.4g /cm, body %d voxels, factors %.3f..%.3f",
             mu_per_cm, int(mask.sum()), float(factors[mask].min()), float(factors[mask].max()))
    return (np.asarray(volume, np.float32) * factors).astype(np.float32), mask
