"""Reconstructed NM volumes (DICOM NM, ImageType ``RECON TOMO``) -> NIfTI in patient RAS.

Many users hold reconstructed DaTSCAN images rather than projections (PPMI's
DaTSCAN images are NM RECON TOMO files). :func:`read_nm_volume` reads one
multi-frame file, one frame per slice, and places it in patient space from the
header alone:

* ``DetectorInformationSequence[0]`` (or the top level) gives
  ``ImagePositionPatient`` (IPP, the centre of the first voxel of the first
  slice, mm) and ``ImageOrientationPatient`` (IOP, the direction cosines of a row
  and of a column), in DICOM's patient coordinates LPS (x to the patient's left,
  y posterior, z head);
* ``PixelSpacing`` is (between rows, between columns); slices follow each other
  along ``row x column`` by ``SpacingBetweenSlices`` (else ``SliceThickness``),
  ordered by ``SliceVector``; this is the convention of dcm2niix, against which
  the affine is tested (``tests/test_recon_volume.py``);
* the NIfTI affine is RAS+: LPS with x and y negated. The voxel axes stay those
  of the file (column, row, slice); nothing is resampled.

``PatientPosition`` (HFS, FFS, ...) needs no handling: IPP and IOP are already
in the patient's own coordinates. Projections (``TOMO``), planar images
(``STATIC``, ``WHOLE BODY``) and anything else are refused with a message naming
the file. Nothing from the header but geometry reaches the outputs.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..checks import check_range
from ..io import InputError
from .dicom import _number, _pixel_error, decimal_vector, open_nm

log = logging.getLogger(__name__)

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _geometry_item(ds):
    """The dataset holding IPP / IOP of a reconstructed NM volume: the detector item, else the top level."""
    for item in ds.get("DetectorInformationSequence") or []:
        if "ImagePositionPatient" in item and "ImageOrientationPatient" in item:
            return item, "DetectorInformationSequence[0]"
    if "ImagePositionPatient" in ds and "ImageOrientationPatient" in ds:
        return ds, "the top level"
    return None, None


def nm_volume_affine(ipp, iop, pixel_spacing, slice_spacing) -> np.ndarray:
    """4x4 voxel (column, row, slice) -> patient RAS mm affine from the DICOM geometry (LPS inputs).

    ``pixel_spacing`` is DICOM's (row spacing, column spacing); the slice axis is
    ``row x column`` (unit) times ``slice_spacing``.
    """
    row = np.asarray(iop[:3], float)
    col = np.asarray(iop[3:], float)
    normal = np.cross(row, col)
    lps = np.eye(4)
    lps[:3, 0] = row * float(pixel_spacing[1])
    lps[:3, 1] = col * float(pixel_spacing[0])
    lps[:3, 2] = normal * float(slice_spacing)
    lps[:3, 3] = np.asarray(ipp, float)
    return LPS_TO_RAS @ lps


def read_nm_volume(path) -> tuple[np.ndarray, np.ndarray, dict]:
    """Read a reconstructed NM volume; return ``(data (n_columns, n_rows, n_slices) float32, RAS affine, summary)``.

    Raises :class:`~datxai.io.InputError` naming the file when it is not a
    reconstructed NM volume or its geometry cannot be read.
    """
    path = Path(path)
    ds = open_nm(path)
    image_type = [str(v).upper() for v in (ds.get("ImageType") or [])]
    kind = image_type[2] if len(image_type) >= 3 else ""
    if kind != "RECON TOMO":
        hint = {"TOMO": "these are projections: use cohort.source dicom (reconstructed by datxai)",
                "STATIC": "a planar image cannot be used", "WHOLE BODY": "a planar image cannot be used"}
        raise InputError(f"{path}: ImageType {kind or 'missing'!r} is not a reconstructed volume (need 'RECON TOMO')"
                         + (f"; {hint[kind]}" if kind in hint else ""))
    n_frames = _number(ds, "NumberOfFrames", path, "slices", cast=int)
    rows = _number(ds, "Rows", path, "slice size", cast=int)
    cols = _number(ds, "Columns", path, "slice size", cast=int)
    n_slices = _number(ds, "NumberOfSlices", path, "", required=False, cast=int)
    if n_slices is not None and n_slices != n_frames:
        raise InputError(f"{path}: NumberOfSlices is {n_slices} but the file has {n_frames} frames")
    if n_frames < 2:
        raise InputError(f"{path}: {n_frames} slice(s); a volume needs at least 2")
    spacing = ds.get("PixelSpacing")
    try:
        spacing = [float(v) for v in spacing]
        assert len(spacing) == 2 and min(spacing) > 0
    except Exception:
        raise InputError(f"{path}: PixelSpacing must be two positive numbers, got {spacing!r}") from None
    dz = _number(ds, "SpacingBetweenSlices", path, "", required=False)
    if dz is None:
        dz = _number(ds, "SliceThickness", path, "slice spacing (SpacingBetweenSlices or SliceThickness)")
    check_range(f"{path}: slice spacing (mm)", dz, 0, low_inclusive=False, exc=InputError)
    item, where = _geometry_item(ds)
    if item is None:
        raise InputError(f"{path}: no ImagePositionPatient / ImageOrientationPatient (in DetectorInformationSequence "
                         "or at the top level): the volume cannot be placed in patient space")
    ipp = decimal_vector(item.ImagePositionPatient, 3)
    iop = decimal_vector(item.ImageOrientationPatient, 6)
    if ipp is None or iop is None:
        raise InputError(f"{path}: ImagePositionPatient / ImageOrientationPatient in {where} are not 3 / 6 numbers")
    ipp, iop = ipp.tolist(), iop.tolist()
    row, col = np.asarray(iop[:3]), np.asarray(iop[3:])
    if abs(np.linalg.norm(row) - 1) > 1e-3 or abs(np.linalg.norm(col) - 1) > 1e-3 or abs(row @ col) > 1e-3:
        raise InputError(f"{path}: ImageOrientationPatient {iop} is not two orthogonal unit vectors")

    try:
        pixels = np.asarray(ds.pixel_array)
    except Exception as exc:
        raise InputError(_pixel_error(ds, path, exc)) from None
    if pixels.shape != (n_frames, rows, cols):
        raise InputError(f"{path}: pixel data has shape {pixels.shape}, header says {(n_frames, rows, cols)}")
    order = np.arange(n_frames)
    if "SliceVector" in ds and ds.SliceVector is not None:
        sv = np.asarray(list(ds.SliceVector), dtype=int)
        if sv.size != n_frames or sorted(sv.tolist()) != list(range(1, n_frames + 1)):
            raise InputError(f"{path}: SliceVector is not a permutation of 1..{n_frames}")
        order = np.argsort(sv, kind="stable")
    slope = _number(ds, "RescaleSlope", path, "", required=False)
    intercept = _number(ds, "RescaleIntercept", path, "", required=False)
    data = pixels[order].astype(np.float64) * (1.0 if slope is None else slope) + (0.0 if intercept is None else intercept)
    if not np.all(np.isfinite(data)):
        raise InputError(f"{path}: the volume contains NaN or Inf after rescaling")
    data = np.ascontiguousarray(data.transpose(2, 1, 0), dtype=np.float32)  # (column, row, slice)
    affine = nm_volume_affine(ipp, iop, spacing, dz)
    summary = {"source": "dicom_recon", "image_type": "\\".join(image_type), "shape": list(data.shape),
               "voxel_mm": [float(spacing[1]), float(spacing[0]), float(dz)], "geometry_from": where,
               "patient_position": str(ds.get("PatientPosition", "") or "") or None,
               "image_min": float(data.min()), "image_max": float(data.max())}
    log.info("%s: %s volume %s of %s mm (geometry from %s)", path.name, kind, data.shape, summary["voxel_mm"], where)
    return data, affine, summary


def convert_volume_file(dicom_path, out_path) -> dict:
    """Read a reconstructed NM volume and write it as NIfTI (atomic); return its summary (geometry only)."""
    from ..io import save_nifti

    data, affine, summary = read_nm_volume(dicom_path)
    save_nifti(data, affine, out_path)
    return summary
