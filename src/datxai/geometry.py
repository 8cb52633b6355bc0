"""Camera (native) geometry of NM tomographic projections, as DICOM PS3.3 defines it.

One definition, used by the simulator's projector and DICOM writer and by the
reader and the reconstruction.

The standard (PS3.3, C.8.4.12 NM Tomo Acquisition Module and C.8.4.10 NM
Detector Module, paraphrased)
-----------------------------------------------------------------------------
* Start Angle (0054,0200): where the detector is, about the patient, at the
  start of a rotation, in degrees. **0 degrees is at the patient's back.** Seen
  from the patient's feet the angle grows **counter-clockwise**: the detector
  normal turns from the patient's back towards the patient's **left** side.
  The angle is relative to the patient, not to the gantry, so a head-first and
  a feet-first supine acquisition read alike.
* Rotation Direction (0018,1140): ``CW`` = decreasing angle, ``CC`` =
  increasing angle; Angular Step (0018,1144) is positive, so view ``k`` of a
  head sits at ``start -/+ k * step``.
* Image Orientation / Position (Patient) (0020,0037 / 0020,0032) of a
  detector (DetectorInformationSequence) describe its first frame in patient
  LPS (x to the patient's left, y posterior, z head; C.7.6.2.1.1): the
  direction of increasing column, of increasing row, and the centre of the
  first pixel.

Native space
------------
The reconstruction frame: arrays ``(nx, ny, nz) = (n_bins, n_bins, n_rows)`` of
isotropic ``bin_mm`` voxels, RAS+ (x: towards the patient's right, y: anterior,
z: superior), the rotation axis through the array centre at x = y = 0.
Along z the volume sits where the header puts the first row (the detector's
ImagePositionPatient), or centred on z = 0 when the header has none
(:func:`native_affine`).

Projections
-----------
A frame is a 2-D array ``(n_rows, n_bins)`` as stored in DICOM. In RAS (x, y)
the detector at angle ``theta`` lies in the direction

    d(theta) = (-sin theta, -cos theta)        (0: posterior, 90: patient's left)

and the detector's bins run along

    u(theta) = (cos theta, -sin theta)         (LPS: (-cos theta, sin theta, 0))

(the pair turns rigidly by ``-theta`` in RAS, i.e. counter-clockwise as seen
from the feet); rows run inferiorly (LPS column direction (0, 0, -1): row 0 is
the superior end). This is what real cameras write (the GE Discovery 670 files
of ``shared/real_nm``: ImageOrientationPatient row (-1, 0.003, 0) at 0.16
degrees, (1, -0.003, 0) at 180.16 degrees, column (0, 0, -1)). Then

    p[r, b] = integral of f(x, y, z_r) along the line  x cos(theta) - y sin(theta) = s_b

with ``s_b = (b - (n_bins - 1) / 2) * bin_mm`` (the centre of rotation at the
frame centre) and ``z_r = z_0 - r * bin_mm``. Photons reach the detector
travelling towards ``+d(theta)``; attenuation is integrated along that half
line, and the distance to the collimator face is
``radius_mm - (x, y) . d(theta)``. In the usual parallel-beam (Radon)
convention ``x cos(alpha) + y sin(alpha) = s`` the same line integral has
``alpha = -theta`` (:func:`radon_angles`).

Angles from DICOM
-----------------
Frames are ordered by detector, then by angle. Detector ``h`` (0-based) starts
at ``start_angle[h]`` and steps by ``step`` degrees per view:
``theta = start_angle[h] + sign * k * step`` with ``sign = +1 (CC) / -1 (CW)``.

Pose (synthetic truth)
----------------------
``native_mm = pose @ mni_mm`` (4x4, homogeneous). Registration estimates the
same matrix (template/MNI mm -> source/native mm), so the two compare directly.
"""

from __future__ import annotations

import numpy as np

from .checks import check_choice


def native_affine(n_bins: int, n_rows: int, bin_mm: float, first_row_z_mm: float | None = None) -> np.ndarray:
    """4x4 voxel-to-mm (RAS) affine of a native volume of shape ``(n_bins, n_bins, n_rows)``.

    Axis 2 runs inferior -> superior, so its last slice is projection row 0, at
    ``first_row_z_mm`` (the detector's ImagePositionPatient z); ``None`` centres
    the rows on z = 0 (the simulator's frame, and headers without a position).
    """
    a = np.diag([bin_mm, bin_mm, bin_mm, 1.0])
    a[:3, 3] = -bin_mm * (np.array([n_bins, n_bins, n_rows]) - 1) / 2.0
    if first_row_z_mm is not None:
        a[2, 3] = float(first_row_z_mm) - bin_mm * (n_rows - 1)
    return a


def bin_positions(n_bins: int, bin_mm: float) -> np.ndarray:
    """Signed distance ``s_b`` (mm) of each detector bin from the centre of rotation."""
    return (np.arange(n_bins) - (n_bins - 1) / 2.0) * bin_mm


def row_positions(n_rows: int, bin_mm: float) -> np.ndarray:
    """Axial position ``z_r`` (mm) of each projection row; row 0 is superior."""
    return ((n_rows - 1) / 2.0 - np.arange(n_rows)) * bin_mm


def frame_angles(start_angles_deg, step_deg: float, views_per_head: int, direction: str) -> np.ndarray:
    """Projection angle (degrees, in [0, 360)) of every frame, ordered by detector then angle."""
    check_choice("rotation direction", direction, ("CW", "CC"))
    sign = 1.0 if direction == "CC" else -1.0
    k = np.arange(views_per_head)
    return np.concatenate([(float(s) + sign * k * step_deg) % 360.0 for s in start_angles_deg])


def detector_direction(theta_deg) -> np.ndarray:
    """``d(theta)``: unit vector(s) ``(..., 2)`` in RAS (x, y) from the rotation axis towards the detector."""
    t = np.deg2rad(np.asarray(theta_deg, dtype=float))
    return np.stack([-np.sin(t), -np.cos(t)], axis=-1)


def bin_direction(theta_deg) -> np.ndarray:
    """``u(theta)``: unit vector(s) ``(..., 2)`` in RAS (x, y) along which the detector's bin index grows."""
    t = np.deg2rad(np.asarray(theta_deg, dtype=float))
    return np.stack([np.cos(t), -np.sin(t)], axis=-1)


def bin_direction_lps(theta_deg) -> np.ndarray:
    """``u(theta)`` in DICOM patient LPS ``(..., 3)``: a detector's ImageOrientationPatient row direction."""
    t = np.deg2rad(np.asarray(theta_deg, dtype=float))
    return np.stack([-np.cos(t), np.sin(t), np.zeros_like(t)], axis=-1)


ROW_DIRECTION_LPS = np.array([0.0, 0.0, -1.0])
"""The ImageOrientationPatient column direction of a projection frame: rows run towards the feet."""


def radon_angles(theta_deg) -> np.ndarray:
    """Angles ``alpha = -theta`` (degrees, in [0, 360)) of the line integrals in the Radon convention.

    ``p(theta, s)`` integrates along ``x cos(theta) - y sin(theta) = s`` (this
    module's definition), which is ``x cos(alpha) + y sin(alpha) = s``: the form
    :func:`datxai.recon.fbp.fbp` and ``skimage.transform.iradon`` take.
    """
    return np.mod(-np.asarray(theta_deg, dtype=float), 360.0)


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
