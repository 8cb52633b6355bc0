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

Energy windows (``EnergyWindowInformationSequence``): real acquisitions store a
photopeak window and scatter windows in one file (the GE files of ``shared/real_nm``:
six). One is reconstructed, chosen by :func:`select_energy_window`: by 1-based
index, by ``EnergyWindowName``, or ``auto``: the window whose range holds the main
photopeak of the radionuclide named in the header (``RadionuclideCodeSequence``,
``Radiopharmaceutical`` or ``RadionuclideHalfLife``; I-123: 159 keV).

The angle of each frame follows :func:`datxai.geometry.frame_angles` (DICOM PS3.3:
0 degrees at the patient's back, counter-clockwise seen from the feet). Where a
detector carries a physical ``ImageOrientationPatient`` (rows along the patient's
long axis), it must agree with its start angle; frames stored with the columns
reversed or the rows running from the feet are turned to the standard's frame,
and its ``ImagePositionPatient`` places the rows along z
(:func:`_detector_orientation`).
Anything that cannot be interpreted raises :class:`datxai.io.InputError`
naming the file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..checks import check_choice, check_range
from ..geometry import ROW_DIRECTION_LPS, bin_direction_lps, frame_angles
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
    energy_window : the chosen window (:func:`select_energy_window`).
    first_row_z_mm : float or None
        Patient z (mm; LPS and RAS agree) of the superior row, from the
        detector's ImagePositionPatient; None when the header has none.
    orientation : tuple of str
        Per detector, what its frame orientation was taken from (for the log).
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
    energy_window: dict | None = None
    first_row_z_mm: float | None = None
    orientation: tuple = ()

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
            "energy_window": self.energy_window,
            "first_row_z_mm": self.first_row_z_mm,
            "orientation": list(self.orientation),
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


# Main gamma lines (keV) and half-lives (s) of the radionuclides of NM imaging (NNDC / LNHB
# nuclear data). ``main`` is the line a photopeak window is centred on for that nuclide.
RADIONUCLIDES = {
    "I-123": {"main": 159.0, "half_life_s": 47_604.0, "element": ("iodine", "i")},
    "Tc-99m": {"main": 140.5, "half_life_s": 21_624.0, "element": ("technetium", "tc")},
    "In-111": {"main": 171.3, "half_life_s": 242_332.0, "element": ("indium", "in")},
    "Lu-177": {"main": 208.4, "half_life_s": 574_300.0, "element": ("lutetium", "lu")},
    "I-131": {"main": 364.5, "half_life_s": 692_988.0, "element": ("iodine", "i")},
    "Ga-67": {"main": 93.3, "half_life_s": 281_810.0, "element": ("gallium", "ga")},
    "Tl-201": {"main": 167.4, "half_life_s": 262_505.0, "element": ("thallium", "tl")},
}


@dataclass(frozen=True)
class EnergyWindow:
    """One item of ``EnergyWindowInformationSequence``: 1-based ``index``, name, ranges (keV)."""

    index: int
    name: str
    ranges: tuple  # ((lower, upper), ...)

    def holds(self, kev: float) -> bool:
        return any(lo <= kev <= hi for lo, hi in self.ranges)

    def describe(self) -> str:
        rng = ", ".join(f"{lo:g}-{hi:g}" for lo, hi in self.ranges) or "no range"
        return f"{self.index} ({self.name or 'unnamed'}: {rng} keV)"


def energy_windows(ds, path) -> list[EnergyWindow]:
    """The energy windows of the header, in order (empty when the sequence is absent)."""
    out = []
    for i, item in enumerate(ds.get("EnergyWindowInformationSequence") or [], start=1):
        ranges = []
        for r in item.get("EnergyWindowRangeSequence") or []:
            lo = _number(r, "EnergyWindowLowerLimit", path, "keV", required=False, item=f"energy window {i}")
            hi = _number(r, "EnergyWindowUpperLimit", path, "keV", required=False, item=f"energy window {i}")
            if lo is not None and hi is not None:
                ranges.append((lo, hi))
        out.append(EnergyWindow(i, str(item.get("EnergyWindowName", "") or "").strip(), tuple(ranges)))
    return out


def _nuclide_from_text(text: str) -> str | None:
    """``'^123^Iodine'``, ``'99m Technetium'``, ``'I-123'``, ``'123I-FP-CIT'``, ``'Lu177'`` -> a key of RADIONUCLIDES."""
    import re

    t = text.lower()
    if "ioflupane" in t or "datscan" in t:  # 123I-FP-CIT under its generic and trade names
        return "I-123"
    for key, info in RADIONUCLIDES.items():
        mass = key.split("-")[1].lower()
        name, sym = info["element"]
        patterns = (rf"\^?{mass}\^?\s*{name}", rf"{name}[\s-]*\^?{mass}\b", rf"\b{sym}[\s-]*{mass}\b",
                    rf"\b{mass}\s*{sym}\b", rf"\b{mass}{sym}[\s-]")
        if any(re.search(p, t) for p in patterns):
            return key
    return None


def radionuclide(ds) -> tuple[str, str] | None:
    """``(nuclide, where it was read)`` from the header's radiopharmaceutical information, or None."""
    for item in ds.get("RadiopharmaceuticalInformationSequence") or []:
        for code in item.get("RadionuclideCodeSequence") or []:
            found = _nuclide_from_text(str(code.get("CodeMeaning", "")))
            if found:
                return found, "RadionuclideCodeSequence"
        found = _nuclide_from_text(str(item.get("Radiopharmaceutical", "") or ""))
        if found:
            return found, "Radiopharmaceutical"
        try:
            half_life = float(item.get("RadionuclideHalfLife"))
        except (TypeError, ValueError):
            continue
        for key, info in RADIONUCLIDES.items():  # within 1 %: the nuclides above differ by more
            if abs(half_life - info["half_life_s"]) <= 0.01 * info["half_life_s"]:
                return key, "RadionuclideHalfLife"
    return None


def select_energy_window(windows: list[EnergyWindow], n_windows: int, choice, path, ds=None) -> dict:
    """The window to reconstruct: ``choice`` is ``'auto'``, a 1-based index or an ``EnergyWindowName``.

    ``auto``: with one window, that one; otherwise the window whose range holds the main photopeak
    of the header's radionuclide (:data:`RADIONUCLIDES`). Returns ``{"index", "name", "range_kev",
    "selected_by", "radionuclide"}``; raises :class:`InputError` naming the file and every window
    when none or several qualify.
    """
    listing = "; ".join(w.describe() for w in windows) or f"{n_windows} window(s) without EnergyWindowInformationSequence"
    nuclide = radionuclide(ds) if ds is not None else None

    def record(index, selected_by):
        w = next((w for w in windows if w.index == index), None)
        return {"index": int(index), "name": w.name if w else None,
                "range_kev": [list(r) for r in w.ranges] if w else None, "selected_by": selected_by,
                "radionuclide": nuclide[0] if nuclide else None}

    if isinstance(choice, bool) or choice is None:
        raise InputError(f"{path}: reconstruct.energy_window must be 'auto', a 1-based index or a window name, "
                         f"got {choice!r}")
    if isinstance(choice, int) or (isinstance(choice, str) and choice.strip().isdigit()):
        index = int(choice)
        if not 1 <= index <= n_windows:
            raise InputError(f"{path}: energy window {index} requested; the file has {n_windows}: {listing}")
        return record(index, "index")
    choice = str(choice).strip()
    if choice != "auto":
        named = [w for w in windows if w.name.lower() == choice.lower()]
        if len(named) != 1:
            raise InputError(f"{path}: reconstruct.energy_window {choice!r} names {len(named)} of the file's windows "
                             f"({listing}); give the 1-based index instead")
        return record(named[0].index, "name")
    if n_windows == 1:
        return record(1, "only window")
    if nuclide is None:
        raise InputError(f"{path}: {n_windows} energy windows ({listing}) and no radionuclide in the header "
                         "(RadionuclideCodeSequence, Radiopharmaceutical, RadionuclideHalfLife) to choose the "
                         "photopeak by; set reconstruct.energy_window to the index or name of the photopeak window")
    peak = RADIONUCLIDES[nuclide[0]]["main"]
    holding = [w for w in windows if w.holds(peak)]
    if len(holding) != 1:
        raise InputError(f"{path}: {len(holding)} of the energy windows hold the {peak:g} keV photopeak of "
                         f"{nuclide[0]} (from {nuclide[1]}): {listing}; set reconstruct.energy_window")
    return record(holding[0].index, f"auto: {nuclide[0]} {peak:g} keV ({nuclide[1]})")


def open_nm(path: Path):
    """Read a DICOM NM image's dataset; :class:`InputError` naming the file when it is missing, not DICOM,
    truncated or not NM Image Storage."""
    import pydicom
    from pydicom.errors import InvalidDicomError

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
    return ds


SUPPORTED_POSITIONS = ("HFS", "FFS")


def _check_patient_position(ds, path) -> None:
    """Refuse a patient position the reconstruction has not been tested for.

    DICOM PS3.3 defines StartAngle relative to the patient (zero at the patient's back,
    counter-clockwise seen from the patient's feet), so head-first and feet-first supine
    acquisitions (PatientPosition HFS / FFS; or, as GE writes it, PatientOrientationCodeSequence
    'recumbent' with the modifier 'supine' and PatientGantryRelationshipCodeSequence
    'headfirst' / 'feet-first') need no change. Prone and decubitus positions are refused
    by name until a real file of each has been checked.
    """
    position = str(ds.get("PatientPosition", "") or "").strip().upper()
    if position and position not in SUPPORTED_POSITIONS:
        raise InputError(f"{path}: PatientPosition {position!r} is not supported (only head-first or feet-first "
                         f"supine: {', '.join(SUPPORTED_POSITIONS)})")
    for item in ds.get("PatientOrientationCodeSequence") or []:
        for mod in item.get("PatientOrientationModifierCodeSequence") or []:
            meaning = str(mod.get("CodeMeaning", "") or "").strip().lower()
            if meaning and meaning != "supine":
                raise InputError(f"{path}: patient orientation {meaning!r} (PatientOrientationModifierCodeSequence) "
                                 "is not supported (only supine)")


def decimal_vector(value, n: int) -> np.ndarray | None:
    """A DICOM multi-valued DS element (ImagePositionPatient, ImageOrientationPatient) as ``n`` finite floats, or
    None when it is absent or is not ``n`` numbers."""
    try:
        v = np.asarray([float(x) for x in value], float)
    except (TypeError, ValueError):
        return None
    return v if v.size == n and np.all(np.isfinite(v)) else None


def _detector_orientation(det, start_deg: float, n_rows: int, row_mm: float, path, h: int):
    """How detector ``h``'s frames lie, from its ImageOrientationPatient / ImagePositionPatient.

    Returns ``(flip_bins, flip_rows, first_row_z_mm, how)``: whether the stored
    columns run against ``u(start)`` and the rows from the feet (both are turned
    to the standard's frame), the patient z (mm) of the superior row, and a word
    for the log. A detector without a physical orientation (absent, or a
    placeholder whose column direction is not the patient's long axis, such as
    the identity ``1\\0\\0\\0\\1\\0``) follows the StartAngle alone.
    An orientation along the long axis whose row direction is not ``+-u(start)``
    contradicts the angle and is refused.
    """
    where = f"DetectorInformationSequence[{h}]"
    v = decimal_vector(det.get("ImageOrientationPatient"), 6) if det is not None else None
    if v is None or min(np.linalg.norm(v[:3]), np.linalg.norm(v[3:])) < 0.5:
        return False, False, None, "StartAngle (no detector orientation)"
    row, col = v[:3] / np.linalg.norm(v[:3]), v[3:] / np.linalg.norm(v[3:])
    along_z = float(np.dot(col, ROW_DIRECTION_LPS))
    if abs(along_z) < 0.99:
        log.warning("%s: %s ImageOrientationPatient %s is not a projection frame's orientation (rows not along the "
                    "patient's long axis); following StartAngle %g deg alone", Path(path).name, where,
                    [round(x, 4) for x in v], start_deg)
        return False, False, None, "StartAngle (placeholder orientation ignored)"
    u = bin_direction_lps(start_deg)
    along_u = float(np.dot(row, u))
    if abs(along_u) < 0.99:
        raise InputError(
            f"{path}: {where} ImageOrientationPatient row direction {[round(x, 4) for x in row]} disagrees with "
            f"its StartAngle {start_deg:g} deg: DICOM PS3.3 puts 0 deg at the patient's back, counter-clockwise seen "
            f"from the feet, so the detector's columns should run along +-{[round(x, 4) for x in u]} (LPS)")
    flip_bins, flip_rows = along_u < 0, along_z < 0
    z_first = None
    pos = decimal_vector(det.get("ImagePositionPatient"), 3)
    if pos is not None:
        z_first = float(pos[2] + (n_rows - 1) * row_mm if flip_rows else pos[2])
    how = "ImageOrientationPatient" + (" (columns reversed)" if flip_bins else "") + (
        " (rows from the feet)" if flip_rows else "")
    return flip_bins, flip_rows, z_first, how


def read_projections(path, energy_window="auto") -> Projections:
    """Read the projections of a tomographic NM acquisition.

    Parameters
    ----------
    path : path of a DICOM file (multi-frame NM, TOMO).
    energy_window : ``'auto'``, a 1-based index or an ``EnergyWindowName`` (:func:`select_energy_window`).

    Raises
    ------
    InputError
        Naming the file: not DICOM or truncated, another modality/SOP class,
        not a tomographic acquisition, inconsistent frame counts or vectors,
        missing or non-square PixelSpacing, angles that do not cover 180 degrees
        or repeat.
    """
    path = Path(path)
    ds = open_nm(path)
    image_type = [str(v).upper() for v in (ds.get("ImageType") or [])]
    if len(image_type) >= 3 and image_type[2] != "TOMO":
        hint = "; a reconstructed volume enters with cohort.source dicom_recon" if image_type[2] == "RECON TOMO" else ""
        raise InputError(f"{path}: ImageType {image_type[2]!r} is not a tomographic acquisition (need 'TOMO'){hint}")
    _check_patient_position(ds, path)

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
    check_choice(f"{path}: RotationDirection", direction, ("CW", "CC"), exc=InputError)
    check_range(f"{path}: AngularStep (degrees)", step, 0, 180, low_inclusive=False, high_inclusive=False,
                exc=InputError)
    check_range(f"{path}: NumberOfFramesInRotation", views, 1, exc=InputError)

    det_seq = ds.get("DetectorInformationSequence") or []
    n_det_tag = _number(ds, "NumberOfDetectors", path, "heads", required=False, cast=int)
    n_heads = n_det_tag if n_det_tag is not None else len(det_seq)
    if n_det_tag is not None and det_seq and len(det_seq) != n_det_tag:
        raise InputError(
            f"{path}: NumberOfDetectors is {n_det_tag} but DetectorInformationSequence has {len(det_seq)} items"
        )
    check_choice(f"{path}: number of detectors", n_heads, (1, 2), exc=InputError)
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
    windows = energy_windows(ds, path)
    if windows and len(windows) != n_windows:
        raise InputError(f"{path}: NumberOfEnergyWindows is {n_windows} but EnergyWindowInformationSequence has "
                         f"{len(windows)} items")
    chosen = select_energy_window(windows, n_windows, energy_window, path, ds)
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
    keep = np.flatnonzero(window_v == chosen["index"])
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
        raise InputError(_pixel_error(ds, path, exc)) from None
    pixels = np.asarray(pixels)
    if pixels.ndim == 2 and n_frames == 1:
        pixels = pixels[None]
    if pixels.shape != (n_frames, n_rows_px, n_cols_px):
        raise InputError(f"{path}: pixel data has shape {pixels.shape}, header says {(n_frames, n_rows_px, n_cols_px)}")
    slope = _number(ds, "RescaleSlope", path, "", required=False)
    intercept = _number(ds, "RescaleIntercept", path, "", required=False)
    frames = pixels[order].astype(np.float64)
    frames = frames * (1.0 if slope is None else slope) + (0.0 if intercept is None else intercept)
    orient = [_detector_orientation(det_seq[h] if h < len(det_seq) else None, start_angles[h], n_rows_px, row_mm,
                                    path, h) for h in range(n_heads)]
    for h, (flip_bins, flip_rows, _, _) in enumerate(orient):
        head = frames[h * views:(h + 1) * views]
        if flip_bins:
            head = head[:, :, ::-1]
        if flip_rows:
            head = head[:, ::-1, :]
        frames[h * views:(h + 1) * views] = head.copy()
    z_first = [o[2] for o in orient if o[2] is not None]
    if len(z_first) > 1 and max(z_first) - min(z_first) > 0.5 * row_mm:
        log.warning("%s: the detectors' first rows lie at different z (%s mm); using detector 1's", path.name,
                    [round(z, 2) for z in z_first])
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
        energy_window=chosen,
        first_row_z_mm=z_first[0] if z_first else None,
        orientation=tuple(o[3] for o in orient),
    )
    log.info(
        "%s: %d frames of %d x %d (bins %.3f mm), %d head(s) x %d views, start %s deg, step %g deg %s; "
        "energy window %d of %d (%s, %s keV; %s); frame orientation from %s",
        path.name, proj.n_frames, proj.n_rows, proj.n_bins, proj.bin_mm, n_heads, views,
        list(proj.start_angles_deg), step, direction, chosen["index"], n_windows, chosen["name"],
        chosen["range_kev"], chosen["selected_by"], "; ".join(proj.orientation),
    )
    return proj


# What decodes each compressed transfer syntax through pydicom (all are datxai dependencies).
_DECODERS = (
    (("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70",
      "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"), "pylibjpeg and pylibjpeg-libjpeg"),
    (("1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202",
      "1.2.840.10008.1.2.4.203"), "pylibjpeg and pylibjpeg-openjpeg"),
    (("1.2.840.10008.1.2.5",), "pydicom (or pylibjpeg-rle)"),
)


def _pixel_error(ds, path, exc) -> str:
    """Why the pixel data could not be read: the transfer syntax and what decodes it, or a truncated file."""
    tsuid = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if tsuid is not None and tsuid.is_compressed:
        need = next((pkgs for uids, pkgs in _DECODERS if str(tsuid) in uids), None)
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        hint = (f"it is decoded by {need} (datxai's requirements; `pip install {need.split(' (')[0].replace(' and ', ' ')}` "
                "into the environment that runs the workflow)") if need else "no decoder for it is known to datxai"
        return (f"{path}: cannot decode the pixel data, transfer syntax {tsuid.name} ({tsuid}): {detail}; {hint}; "
                "or convert the file to Explicit VR Little Endian (e.g. dcmdjpeg / gdcmconv --raw)")
    return f"{path}: pixel data truncated or unreadable ({type(exc).__name__})"


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
