"""Camera (native) geometry shared by the simulator's projector and the reconstruction.

Native space
------------
The reconstruction frame of a parallel-hole SPECT camera. Arrays are
``(nx, ny, nz) = (n_bins, n_bins, n_rows)`` of isotropic ``bin_mm`` voxels,
RAS+ (x: patient left -> right, y: posterior -> anterior, z: inferior ->
superior; patient supine, head first), with the centre of rotation at the
array centre = (0, 0, 0) mm. See :func:`native_affine`.

Projections
-----------
A frame is a 2-D array ``(n_rows, n_bins)`` as stored in DICOM (row 0 is the
superior end). For projection angle ``theta`` (degrees):

    p[r, b] = integral of f(x, y, z_r) along the line  x cos(theta) + y sin(theta) = s_b

with ``s_b = (b - (n_bins - 1) / 2) * bin_mm`` and
``z_r = ((n_rows - 1) / 2 - r) * bin_mm``. The detector at ``theta`` faces the
patient from the direction ``d(theta) = (-sin(theta), cos(theta))``: at
``theta = 0`` it is anterior. Photons travel from the emission point towards
``+d(theta)``; attenuation is integrated along that half line, and the distance
to the collimator face is ``radius_mm - (x, y) . d(theta)``.

Angles from DICOM
-----------------
Frames are ordered by detector, then by angle. Detector ``h`` (0-based) starts
at ``start_angle[h]`` and steps by ``step`` degrees per view; ``theta`` grows
for ``RotationDirection == 'CC'`` and falls for ``'CW'``:
``theta = start_angle[h] + sign * k * step`` with ``sign = +1 (CC) / -1 (CW)``.

Pose (synthetic truth)
----------------------
``native_mm = pose @ mni_mm`` (4x4, homogeneous). Registration estimates the
same matrix (template/MNI mm -> source/native mm), so the two compare directly.
"""

from __future__ import annotations

import numpy as np


def native_affine(n_bins: int, n_rows: int, bin_mm: float) -> np.ndarray:
    """4x4 voxel-to-mm affine of a native volume of shape ``(n_bins, n_bins, n_rows)``."""
    a = np.diag([bin_mm, bin_mm, bin_mm, 1.0])
    a[:3, 3] = -bin_mm * (np.array([n_bins, n_bins, n_rows]) - 1) / 2.0
    return a


def bin_positions(n_bins: int, bin_mm: float) -> np.ndarray:
    """Signed distance ``s_b`` (mm) of each detector bin from the centre of rotation."""
    return (np.arange(n_bins) - (n_bins - 1) / 2.0) * bin_mm


def row_positions(n_rows: int, bin_mm: float) -> np.ndarray:
    """Axial position ``z_r`` (mm) of each projection row; row 0 is superior."""
    return ((n_rows - 1) / 2.0 - np.arange(n_rows)) * bin_mm


def frame_angles(start_angles_deg, step_deg: float, views_per_head: int, direction: str) -> np.ndarray:
    """Projection angle (degrees, in [0, 360)) of every frame, ordered by detector then angle."""
    if direction not in ("CW", "CC"):
        raise ValueError(f"rotation direction must be 'CW' or 'CC', got {direction!r}")
    sign = 1.0 if direction == "CC" else -1.0
    k = np.arange(views_per_head)
    return np.concatenate([(float(s) + sign * k * step_deg) % 360.0 for s in start_angles_deg])


def detector_direction(theta_deg) -> np.ndarray:
    """Unit vector(s) ``(..., 2)`` in the (x, y) plane pointing from the patient to the detector."""
    t = np.deg2rad(np.asarray(theta_deg, dtype=float))
    return np.stack([-np.sin(t), np.cos(t)], axis=-1)


def rigid_affine(rotation_deg, translation_mm, scale=1.0) -> np.ndarray:
    """4x4 affine ``T @ Rz @ Ry @ Rx @ S``: rotations about x, y, z (degrees), translation (mm), isotropic scale."""
    rx, ry, rz = np.deg2rad(np.asarray(rotation_deg, dtype=float))
    cx, sx, cy, sy, cz, sz = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry), np.cos(rz), np.sin(rz)
    Rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    Ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    Rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    a = np.eye(4)
    a[:3, :3] = Rz @ Ry @ Rx * float(scale)
    a[:3, 3] = translation_mm
    return a


def mean_displacement_mm(a: np.ndarray, b: np.ndarray, points_mm: np.ndarray) -> float:
    """Mean Euclidean distance (mm) between ``a @ p`` and ``b @ p`` over points ``(n, 3)``."""
    p = np.c_[points_mm, np.ones(len(points_mm))]
    return float(np.linalg.norm((p @ a.T - p @ b.T)[:, :3], axis=1).mean())
