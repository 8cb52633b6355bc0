"""Read DICOM NM tomographic projections (one file, multi-frame) as real cameras export them.

What is read (nothing else; in particular no name, id, date or accession):

* SOP class NM Image Storage, ``Modality == 'NM'``, ``ImageType`` value 3 ``TOMO``.
* ``NumberOfFrames``, ``Rows``, ``Columns``, ``PixelSpacing`` (row, column; mm),
  ``RescaleSlope`` / ``RescaleIntercept`` when present.
* ``NumberOfDetectors`` / ``DetectorInformationSequence``: one or two heads, each
  with its ``StartAngle``; with one head the ``StartAngle`` of the
  ``RotationInformationSequence`` is accepted instead.
* ``RotationInformationSequence[0]``: ``AngularStep``, ``RotationDirection`` (CW/CC),
  ``NumberOfFramesInRotation`` (views per head). One rotation only.
* ``DetectorVector``, ``AngularViewVector`` (and ``EnergyWindowVector``,
  ``RotationVector``): the head, view (1-based) and window of each frame. Without
  them the order of the standard's NM multi-frame module is assumed
  (energy window, then detector, then angular view).

The angle of each frame follows :func:`datxai.geometry.frame_angles`.
Anything that cannot be interpreted raises :class:`datxai.io.InputError`
naming the file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..geometry import frame_angles
from ..io import InputError

log = logging.getLogger(__name__)

NM_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.20": "NM Image Storage",
    "1.2.840.10008.5.1.4.1.1.5": "NM Image Storage (retired)",
}


@dataclass(frozen=True)
class Projections:
    """Tomographic projections of one acquisition (no identifying data).

    Attributes
    ----------
    frames : ``(n_frames, n_rows, n_bins)`` float32
        Counts per bin after rescaling, ordered by detector then angle; row 0 superior.
    angles_deg : ``(n_frames,)`` float
        Projection angle of each frame, degrees in [0, 360) (geometry convention).
    detector : ``(n_frames,)`` int
        0-based head of each frame.
    bin_mm : float
        Bin (and row) size in mm.
    n_heads, views_per_head : int
    start_angles_deg : tuple of float
        Start angle of each head.
    step_deg : float
    direction : ``'CW'`` or ``'CC'``
    """

    frames: np.ndarray
    angles_deg: np.ndarray
    detector: np.ndarray
    bin_mm: float
    n_heads: int
    views_per_head: int
    start_angles_deg: tuple
    step_deg: float
    direction: str

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def n_rows(self) -> int:
        return int(self.frames.shape[1])

    @property
    def n_bins(self) -> int:
        return int(self.frames.shape[2])

    def summary(self) -> dict:
        """Geometry only (safe to log or write next to outputs)."""
        return {
            "n_frames": self.n_frames,
            "n_rows": self.n_rows,
            "n_bins": self.n_bins,
            "bin_mm": self.bin_mm,
            "n_heads": self.n_heads,
            "views_per_head": self.views_per_head,
            "start_angles_deg": list(self.start_angles_deg),
            "step_deg": self.step_deg,
            "direction": self.direction,
            "total_counts": float(self.frames.sum(dtype=np.float64)),
        }


def _get(ds, keyword, path, what, required=True, item=None):
    where = f" in {item}" if item else ""
    value = getattr(ds, keyword, None) if keyword in ds else None
    if value is None or value == "":
        if required:
            raise InputError(f"{path}: missing {keyword}{where} ({what})")
        return None
    return value


def _number(ds, keyword, path, what, required=True, item=None, cast=float):
    value = _get(ds, keyword, path, what, required, item)
    if value is None:
        return None
    try:
        return cast(value)
    except (TypeError, ValueError):
        raise InputError(f"{path}: {keyword}{' in ' + item if item else ''} is not a number: {value!r}") from None


def _vector(ds, keyword, n_frames, path, default):
    if keyword not in ds or ds[keyword].value is None:
        return default
    v = ds[keyword].value
    v = np.atleast_1d(np.asarray(list(v) if not np.isscalar(v) else [v], dtype=float))
    if v.size != n_frames:
        raise InputError(f"{path}: {keyword} has {v.size} entries but the file has {n_frames} frames")
    if not np.all(v == np.round(v)):
        raise InputError(f"{path}: {keyword} is not a list of integers")
    return v.astype(int)


def read_projections(path, energy_window: int = 1) -> Projections:
    """Read the projections of a tomographic NM acquisition.

    Parameters
    ----------
    path : path of a DICOM file (multi-frame NM, TOMO).
    energy_window : 1-based energy window to keep when several are stored.

    Raises
    ------
    InputError
        Naming the file: not DICOM or truncated, another modality/SOP class,
        not a tomographic acquisition, inconsistent frame counts or vectors,
        missing or non-square PixelSpacing, angles that do not cover 180 degrees
        or repeat.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        ds = pydicom.dcmread(path)
    except InvalidDicomError:
        raise InputError(f"{path}: not a DICOM file (no 'DICM' marker)") from None
    except Exception as exc:  # truncated headers raise several types
        raise InputError(f"{path}: unreadable DICOM header ({type(exc).__name__})") from None
    if "PixelData" not in ds:  # pydicom reads a file cut inside the header without complaint
        raise InputError(f"{path}: no pixel data: the file is truncated ({path.stat().st_size} bytes) "
                         "or is not an image (e.g. a report or a half-copied file)")

    sop = str(ds.get("SOPClassUID", ""))
    modality = str(ds.get("Modality", ""))
    if sop not in NM_SOP_CLASSES or modality != "NM":
        raise InputError(
            f"{path}: not a nuclear-medicine image (Modality {modality or 'missing'!r}, "
            f"SOP class {sop or 'missing'!r}); expected NM Image Storage"
        )
    image_type = [str(v).upper() for v in (ds.get("ImageType") or [])]
    if len(image_type) >= 3 and image_type[2] != "TOMO":
        raise InputError(f"{path}: ImageType {image_type[2]!r} is not a tomographic acquisition (need 'TOMO')")

    n_frames = _number(ds, "NumberOfFrames", path, "multi-frame projections", cast=int)
    n_rows_px = _number(ds, "Rows", path, "frame size", cast=int)
    n_cols_px = _number(ds, "Columns", path, "frame size", cast=int)
    if n_frames < 2 or n_rows_px < 1 or n_cols_px < 2:
        raise InputError(f"{path}: implausible size {n_frames} frames of {n_rows_px} x {n_cols_px}")

    spacing = _get(ds, "PixelSpacing", path, "bin size in mm")
    try:
        row_mm, col_mm = (float(v) for v in spacing)
    except (TypeError, ValueError):
        raise InputError(f"{path}: PixelSpacing must be two numbers, got {spacing!r}") from None
    if not (row_mm > 0 and col_mm > 0):
        raise InputError(f"{path}: PixelSpacing must be positive, got {[row_mm, col_mm]}")
    if abs(row_mm - col_mm) > 1e-3 * col_mm:
        raise InputError(f"{path}: non-square pixels (PixelSpacing {[row_mm, col_mm]}) are not supported")

    rot_seq = _get(ds, "RotationInformationSequence", path, "tomographic rotation")
    if len(rot_seq) != 1 or int(ds.get("NumberOfRotations", 1) or 1) != 1:
        raise InputError(f"{path}: {len(rot_seq)} rotations stored; only single-rotation acquisitions are supported")
    rot = rot_seq[0]
    item = "RotationInformationSequence[0]"
    step = _number(rot, "AngularStep", path, "degrees per view", item=item)
    direction = str(_get(rot, "RotationDirection", path, "CW or CC", item=item)).upper()
    views = _number(rot, "NumberOfFramesInRotation", path, "views per head", item=item, cast=int)
    if direction not in ("CW", "CC"):
        raise InputError(f"{path}: RotationDirection must be 'CW' or 'CC', got {direction!r}")
    if not 0 < step < 180:
        raise InputError(f"{path}: AngularStep {step} deg is outside (0, 180)")
    if views < 1:
        raise InputError(f"{path}: NumberOfFramesInRotation must be >= 1, got {views}")

    det_seq = ds.get("DetectorInformationSequence") or []
    n_det_tag = _number(ds, "NumberOfDetectors", path, "heads", required=False, cast=int)
    n_heads = n_det_tag if n_det_tag is not None else len(det_seq)
    if n_det_tag is not None and det_seq and len(det_seq) != n_det_tag:
        raise InputError(
            f"{path}: NumberOfDetectors is {n_det_tag} but DetectorInformationSequence has {len(det_seq)} items"
        )
    if n_heads not in (1, 2):
        raise InputError(f"{path}: {n_heads} detectors; one or two are supported")
    starts = [
        _number(d, "StartAngle", path, "", required=False, item=f"DetectorInformationSequence[{h}]")
        for h, d in enumerate(det_seq)
    ]
    if det_seq and all(s is not None for s in starts):
        start_angles = tuple(starts)
    elif n_heads == 1 and "StartAngle" in rot:
        start_angles = (_number(rot, "StartAngle", path, "", item=item),)
    else:
        raise InputError(
            f"{path}: cannot tell the start angle of each of the {n_heads} detector(s) "
            "(StartAngle missing from DetectorInformationSequence)"
        )

    n_windows = _number(ds, "NumberOfEnergyWindows", path, "", required=False, cast=int) or 1
    if n_frames != n_windows * n_heads * views:
        raise InputError(
            f"{path}: NumberOfFrames is {n_frames} but {n_windows} energy window(s) x {n_heads} detector(s) x "
            f"{views} views (NumberOfFramesInRotation) = {n_windows * n_heads * views}"
        )
    if not 1 <= energy_window <= n_windows:
        raise InputError(f"{path}: energy window {energy_window} requested; the file has {n_windows}")
    # default: the standard's nesting (window, detector, view), views fastest
    idx = np.arange(n_frames)
    window_v = _vector(ds, "EnergyWindowVector", n_frames, path, idx // (n_heads * views) + 1)
    det_v = _vector(ds, "DetectorVector", n_frames, path, (idx // views) % n_heads + 1)
    view_v = _vector(ds, "AngularViewVector", n_frames, path, idx % views + 1)
    rot_v = _vector(ds, "RotationVector", n_frames, path, np.ones(n_frames, int))
    for name, v, hi in (("EnergyWindowVector", window_v, n_windows), ("DetectorVector", det_v, n_heads),
                        ("AngularViewVector", view_v, views), ("RotationVector", rot_v, 1)):
        if v.min() < 1 or v.max() > hi:
            raise InputError(f"{path}: {name} has values outside 1..{hi} (found {v.min()}..{v.max()})")
    keep = np.flatnonzero(window_v == energy_window)
    code = (det_v[keep] - 1) * views + (view_v[keep] - 1)
    if code.size != n_heads * views or np.unique(code).size != code.size:
        raise InputError(
            f"{path}: the frame vectors do not give each detector x view exactly once "
            f"({code.size} frames, {np.unique(code).size} distinct; expected {n_heads * views})"
        )
    order = keep[np.argsort(code)]

    angles = frame_angles(start_angles, step, views, direction)
    _check_angles(angles, step, path)

    try:
        pixels = ds.pixel_array
    except Exception as exc:
        raise InputError(f"{path}: pixel data truncated or unreadable ({type(exc).__name__})") from None
    pixels = np.asarray(pixels)
    if pixels.ndim == 2 and n_frames == 1:
        pixels = pixels[None]
    if pixels.shape != (n_frames, n_rows_px, n_cols_px):
        raise InputError(f"{path}: pixel data has shape {pixels.shape}, header says {(n_frames, n_rows_px, n_cols_px)}")
    slope = _number(ds, "RescaleSlope", path, "", required=False)
    intercept = _number(ds, "RescaleIntercept", path, "", required=False)
    frames = pixels[order].astype(np.float64)
    frames = frames * (1.0 if slope is None else slope) + (0.0 if intercept is None else intercept)
    if not np.all(np.isfinite(frames)):
        raise InputError(f"{path}: projections contain NaN or Inf after rescaling")
    if frames.min() < 0:
        log.warning("%s: %d negative projection values after rescaling", path.name, int((frames < 0).sum()))

    proj = Projections(
        frames=frames.astype(np.float32),
        angles_deg=angles,
        detector=np.repeat(np.arange(n_heads), views),
        bin_mm=col_mm,
        n_heads=n_heads,
        views_per_head=views,
        start_angles_deg=tuple(float(s) for s in start_angles),
        step_deg=float(step),
        direction=direction,
    )
    log.info(
        "%s: %d frames of %d x %d (bins %.3f mm), %d head(s) x %d views, start %s deg, step %g deg %s",
        path.name, proj.n_frames, proj.n_rows, proj.n_bins, proj.bin_mm, n_heads, views,
        list(proj.start_angles_deg), step, direction,
    )
    return proj


def _check_angles(angles, step, path):
    """Refuse repeated views and views that leave a gap in the 180 degrees FBP needs."""
    a = np.sort(np.mod(angles, 360.0))
    gaps360 = np.diff(np.r_[a, a[0] + 360.0])
    if gaps360.min() < 1e-3 * step:
        raise InputError(f"{path}: two frames have the same angle (check StartAngle of each detector)")
    f = np.sort(np.mod(angles, 180.0))
    gaps180 = np.diff(np.r_[f, f[0] + 180.0])
    if gaps180.max() > 1.5 * step + 1e-6:
        covered = 180.0 - gaps180.max() + step
        raise InputError(
            f"{path}: the views cover about {covered:.0f} of the 180 degrees parallel-beam FBP needs "
            f"(largest gap {gaps180.max():.1f} deg with AngularStep {step:g})"
        )
