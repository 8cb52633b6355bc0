"""Reconstructed NM volumes (cohort.source dicom_recon) against dcm2niix and the standard's equation.

DICOM PS3.3 C.7.6.2.1.1: the centre of voxel (column i, row j) lies at
``IPP + i * dc * row_cosine + j * dr * column_cosine`` (LPS mm; PixelSpacing = (dr, dc));
slice k adds ``k * spacing * (row x column)`` (the convention dcm2niix applies to NM volumes).
"""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
nib = pytest.importorskip("nibabel")
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.sequence import Sequence  # noqa: E402
from pydicom.tag import Tag  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, generate_uid  # noqa: E402

from datxai.io import InputError  # noqa: E402
from datxai.recon import read_nm_volume  # noqa: E402

REAL = Path(__file__).resolve().parents[2] / "shared" / "real_nm"
NM = "1.2.840.10008.5.1.4.1.1.20"


def recon_tomo(volume_cri, ipp, iop, spacing=(2.0, 3.0), dz=4.0, order=None, slope=None, where="detector"):
    """An NM RECON TOMO file; ``volume_cri`` is ``(slices, rows, columns)`` uint16 in slice order."""
    n, rows, cols = volume_cri.shape
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = NM, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = NM, meta.MediaStorageSOPInstanceUID, "NM"
    ds.PatientName, ds.PatientID = "Doe^Jane", "PID-8731-XQ"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "RECON TOMO", "EMISSION"]
    ds.NumberOfFrames, ds.NumberOfSlices, ds.Rows, ds.Columns = n, n, rows, cols
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelSpacing = list(spacing)
    ds.SpacingBetweenSlices = dz
    ds.SliceThickness = dz
    ds.FrameIncrementPointer = Tag(0x0054, 0x0080)
    sv = np.arange(1, n + 1) if order is None else np.asarray(order) + 1
    ds.SliceVector = [int(v) for v in sv]
    det = Dataset()
    holder = det if where == "detector" else ds
    holder.ImagePositionPatient = [float(v) for v in ipp]
    holder.ImageOrientationPatient = [float(v) for v in iop]
    ds.DetectorInformationSequence = Sequence([det])
    ds.PatientPosition = "FFS"
    if slope is not None:
        ds.RescaleSlope, ds.RescaleIntercept = slope, 0.0
    frames = volume_cri if order is None else volume_cri[np.asarray(order)]  # frame f holds slice order[f]
    ds.PixelData = np.ascontiguousarray(frames, dtype=np.uint16).tobytes()
    return ds


def oblique_iop(rng):
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    return np.r_[q[:, 0], q[:, 1]]


def test_voxel_centres_follow_the_standard(tmp_path, rng):
    """Shape (7, 8, 9) with an oblique orientation, shuffled slices and a rescale slope."""
    vol = rng.integers(0, 4000, size=(9, 8, 7)).astype(np.uint16)  # (slices, rows, columns)
    ipp, iop = np.array([-31.5, 12.25, 80.0]), oblique_iop(rng)
    order = rng.permutation(9)
    path = tmp_path / "v.dcm"
    recon_tomo(vol, ipp, iop, order=order, slope=0.25).save_as(path, enforce_file_format=True)
    data, affine, summary = read_nm_volume(path)
    assert data.shape == (7, 8, 9) and summary["voxel_mm"] == [3.0, 2.0, 4.0]
    np.testing.assert_array_equal(data, vol.transpose(2, 1, 0) * 0.25)
    row, col = iop[:3], iop[3:]
    for (i, j, k) in [(0, 0, 0), (6, 0, 0), (0, 7, 0), (3, 5, 8)]:
        lps = ipp + i * 3.0 * row + j * 2.0 * col + k * 4.0 * np.cross(row, col)
        ras = affine @ [i, j, k, 1]
        np.testing.assert_allclose(ras[:3], lps * [-1, -1, 1], atol=1e-9)
    assert "Doe" not in str(summary) and "PID" not in str(summary)


def _dcm2niix(src: Path, out: Path):
    if shutil.which("dcm2niix") is None:
        pytest.skip("dcm2niix (Debian package dcm2niix) is not installed")
    out.mkdir()
    work = out / "in"
    work.mkdir()
    shutil.copy(src, work / "f.dcm")  # dcm2niix converts a folder; give it this file alone
    subprocess.run(["dcm2niix", "-z", "y", "-f", "out", "-o", str(out), str(work)], check=True,
                   capture_output=True, timeout=120)
    return nib.load(out / "out.nii.gz")


def _same_image(data, affine, ref, atol_mm=1e-3):
    """Compare after reorienting both to the closest canonical (RAS) voxel order, as nibabel does."""
    a = nib.as_closest_canonical(nib.Nifti1Image(data, affine))
    b = nib.as_closest_canonical(ref)
    assert a.shape == b.shape
    corners = np.array([[0, 0, 0, 1], [a.shape[0] - 1, a.shape[1] - 1, a.shape[2] - 1, 1]]).T
    np.testing.assert_allclose(a.affine @ corners, b.affine @ corners, atol=atol_mm)
    np.testing.assert_allclose(a.affine[:3, :3], b.affine[:3, :3], atol=1e-5)
    np.testing.assert_array_equal(np.asarray(a.dataobj, np.float64), np.asarray(b.dataobj, np.float64))


def test_synthetic_volume_agrees_with_dcm2niix(tmp_path, rng):
    vol = rng.integers(0, 4000, size=(9, 8, 7)).astype(np.uint16)
    iop = np.r_[np.cos(0.2), np.sin(0.2), 0.0, 0.0, 0.0, -1.0]  # a coronal slab turned 11.5 degrees about z
    path = tmp_path / "v.dcm"
    recon_tomo(vol, [10.0, -20.0, 30.0], iop, where="top").save_as(path, enforce_file_format=True)
    data, affine, _ = read_nm_volume(path)
    _same_image(data, affine, _dcm2niix(path, tmp_path / "d2n"))


@pytest.mark.skipif(not (REAL / "Siemens_Encore2_RECONTOMO_linesource.dcm").is_file(),
                    reason="../shared/real_nm is not beside this checkout")
def test_real_siemens_recon_agrees_with_dcm2niix(tmp_path):
    """Siemens Symbia (Encore2) RECON TOMO, 128 x 128 x 77 of 1.1988 mm, feet-first, near-axial IOP."""
    path = REAL / "Siemens_Encore2_RECONTOMO_linesource.dcm"
    data, affine, summary = read_nm_volume(path)
    assert data.shape == (128, 128, 77) and summary["patient_position"] == "FFS"
    assert nib.aff2axcodes(affine) == ("L", "P", "S")  # columns to the patient's left, rows posterior, slices up
    _same_image(data, affine, _dcm2niix(path, tmp_path / "d2n"))


@pytest.mark.parametrize("name, match", [
    ("Siemens_Encore2_STATIC_linesource.dcm", "ImageType 'STATIC' is not a reconstructed volume .*planar"),
    ("Siemens_Encore2_WHOLEBODY_2det.dcm", "ImageType 'WHOLE BODY' is not a reconstructed volume .*planar"),
    ("GE_D670Pro_Lu177_6win_bed1_CC.dcm", "ImageType 'TOMO' is not a reconstructed volume .*cohort.source dicom"),
])
def test_other_nm_files_are_refused(name, match):
    if not (REAL / name).is_file():
        pytest.skip("../shared/real_nm is not beside this checkout")
    with pytest.raises(InputError, match=match):
        read_nm_volume(REAL / name)


def test_missing_geometry_is_refused(tmp_path, rng):
    ds = recon_tomo(rng.integers(0, 9, size=(3, 4, 5)).astype(np.uint16), [0, 0, 0], [1, 0, 0, 0, 1, 0])
    del ds.DetectorInformationSequence[0].ImagePositionPatient
    path = tmp_path / "v.dcm"
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(InputError, match="no ImagePositionPatient / ImageOrientationPatient"):
        read_nm_volume(path)
