"""An object asymmetric in all three axes must land where it is in patient RAS.

The simulator's camera and DICOM writer and the reader and FBP each follow
:mod:`datxai.geometry`; the definitions themselves are checked here against
the words of DICOM PS3.3 (where 0 degrees is, which way the angle grows, what
CW/CC mean) and against the orientation a real GE camera wrote, then the whole
chain on a phantom for CW and CC, start angles 0/90/180/270, one and two
heads, and head-first and feet-first supine headers (feet-first written both
as GE writes it and with the frames as a gantry-fixed detector sees them).
"""

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

from datxai import geometry  # noqa: E402
from datxai.grid import Grid  # noqa: E402
from datxai.io import InputError, load_nifti  # noqa: E402
from datxai.recon import read_projections, reconstruct_file  # noqa: E402
from datxai.simulate.camera import Camera, project  # noqa: E402
from datxai.simulate.dicom import fake_identity, write_nm  # noqa: E402

# blobs in patient RAS mm (x right, y anterior, z superior), with distinct values so that each is told apart
BLOBS = {"right": ((32.0, -4.0, -12.0), 1.0), "anterior": ((-6.0, 38.0, 2.0), 0.7), "superior": ((-14.0, -10.0, 30.0), 0.45)}


def test_definitions_follow_the_standard_words():
    # PS3.3 C.8.4.12: 0 deg at the patient's back; seen from the feet, counter-clockwise = towards the patient's left
    assert np.allclose(geometry.detector_direction(0.0), [0.0, -1.0])  # RAS: posterior
    assert np.allclose(geometry.detector_direction(90.0), [-1.0, 0.0])  # the patient's left
    assert np.allclose(geometry.detector_direction(180.0), [0.0, 1.0], atol=1e-12)  # anterior
    # CC increases the angle, CW decreases it
    assert np.allclose(geometry.frame_angles([10.0], 5.0, 3, "CC"), [10, 15, 20])
    assert np.allclose(geometry.frame_angles([10.0], 5.0, 3, "CW"), [10, 5, 0])
    # bins and detector turn together (a rigid detector): u is d turned by +90 deg in RAS, for any angle
    th = np.linspace(0, 360, 37)
    d, u = geometry.detector_direction(th), geometry.bin_direction(th)
    assert np.allclose(u, np.stack([-d[:, 1], d[:, 0]], axis=1))
    # LPS row direction of a frame = RAS u with x and y negated
    assert np.allclose(geometry.bin_direction_lps(th)[:, :2], -u)


def test_definitions_match_what_a_ge_camera_writes():
    # GE Discovery 670 Pro (shared/real_nm): ImageOrientationPatient of the detector's first frame
    ge = {180.16: [0.999996, -0.002793, 0, 0, 0, -1], 0.16: [-0.999996, 0.002793, 0, 0, 0, -1]}
    for start, iop in ge.items():
        assert np.allclose(geometry.bin_direction_lps(start), iop[:3], atol=1e-5)
        assert np.allclose(geometry.ROW_DIRECTION_LPS, iop[3:])


def _phantom():
    grid = Grid((44, 46, 40), 2.5, (0.0, 0.0, 0.0))
    x, y, z = grid.coords_mm()
    vol = np.zeros(grid.shape)
    for (cx, cy, cz), value in BLOBS.values():
        vol += value * np.exp(-((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2) / (2 * 4.0**2))
    return grid, vol


def _centroids(vol, aff):
    """Activity centroid (RAS mm) and total activity within 12 mm of each blob's true place."""
    ijk = np.indices(vol.shape).reshape(3, -1).T
    mm = (np.c_[ijk, np.ones(len(ijk))] @ aff.T)[:, :3]
    v = vol.ravel()
    out = {}
    for name, (centre, _) in BLOBS.items():
        near = np.linalg.norm(mm - centre, axis=1) < 12.0
        w = np.clip(v, 0, None) * near
        out[name] = (mm * w[:, None]).sum(0) / w.sum(), float(w.sum())
    return out


def _write(tmp_path, cam, name):
    grid, vol = _phantom()
    frames = project(vol, grid, cam, blur=False)
    counts = np.round(frames * 200).astype(np.int64)
    ident = fake_identity(3, name, 70, "F")
    return write_nm(tmp_path / f"{name}.dcm", counts, cam, name, ident, 3, 70, "F", 150.0)


def _feet_first_gantry_view(path):
    """The same acquisition as a feet-first camera whose frames keep the gantry's view stores it.

    The patient lies the other way round on the table, so the detector's columns run against u(theta) and
    its rows from the feet up; the angles stay patient-relative (PS3.3) and the orientation says the rest.
    """
    ds = pydicom.dcmread(path)
    px = ds.pixel_array[:, ::-1, ::-1]
    ds.PixelData = np.ascontiguousarray(px).tobytes()
    ds.PatientPosition = "FFS"
    n_rows = ds.Rows
    for det in ds.DetectorInformationSequence:
        row = -np.asarray([float(v) for v in det.ImageOrientationPatient[:3]])
        det.ImageOrientationPatient = [f"{v:.6f}" for v in (*row, 0.0, 0.0, 1.0)]
        ipp = np.asarray([float(v) for v in det.ImagePositionPatient])
        first = -ipp  # the far bin: the first bin's lateral position mirrored
        first[2] = ipp[2] - (n_rows - 1) * float(ds.PixelSpacing[0])  # the inferior row comes first
        det.ImagePositionPatient = [f"{v:.4f}" for v in first]
    out = path.with_name(path.stem + "_ffs_gantry.dcm")
    ds.save_as(out, enforce_file_format=True)
    return out


def _feet_first_as_ge_writes_it(path):
    ds = pydicom.dcmread(path)
    ds.PatientPosition = "FFS"
    out = path.with_name(path.stem + "_ffs.dcm")
    ds.save_as(out, enforce_file_format=True)
    return out


@pytest.mark.parametrize("rotation", ["CW", "CC"])
@pytest.mark.parametrize("start", [0.0, 90.0, 180.0, 270.0])
def test_asymmetric_phantom_lands_in_place(tmp_path, rotation, start):
    cam = Camera(n_bins=40, bin_mm=4.0, n_views=60, n_heads=1, rotation=rotation, start_angle_deg=start,
                 collimator_fwhm_mm=0.0, collimator_fwhm_slope=0.0, mu_per_cm=0.0)
    hfs = _write(tmp_path, cam, f"s{int(start)}{rotation}")
    results = {}
    for position, path in (("HFS", hfs), ("FFS (as GE writes it)", _feet_first_as_ge_writes_it(hfs)),
                           ("FFS (gantry view)", _feet_first_gantry_view(hfs))):
        out = tmp_path / f"{path.stem}.nii.gz"
        summary = reconstruct_file(path, out, {"filter": "ram-lak", "cutoff_cycles_per_cm": None})
        vol, aff = load_nifti(out)
        results[position] = vol
        assert summary["orientation"] == ["ImageOrientationPatient" + (
            " (columns reversed) (rows from the feet)" if "gantry" in position else "")]
        found = _centroids(vol, aff)
        for name, (got, total) in found.items():
            # a 4 mm-bin reconstruction of a 4 mm (sigma) blob: its centroid within half a bin,
            # and each blob is the one of its activity (relative to the brightest; equal widths)
            assert np.allclose(got, BLOBS[name][0], atol=2.0), (position, name, got)
            assert total / found["right"][1] == pytest.approx(BLOBS[name][1], rel=0.1), (position, name)
    # the three headers describe one acquisition: the same image
    ref = results["HFS"]
    for vol in results.values():
        assert np.array_equal(vol, ref)


def test_two_heads_and_the_simulator_header(tmp_path):
    cam = Camera(n_bins=40, bin_mm=4.0, n_views=60, n_heads=2, rotation="CW", start_angle_deg=90.0,
                 collimator_fwhm_mm=0.0, collimator_fwhm_slope=0.0, mu_per_cm=0.0)
    path = _write(tmp_path, cam, "two")
    ds = pydicom.dcmread(path)
    for det, start in zip(ds.DetectorInformationSequence, (90.0, 270.0)):
        assert float(det.StartAngle) == start
        iop = [float(v) for v in det.ImageOrientationPatient]
        assert np.allclose(iop[:3], geometry.bin_direction_lps(start), atol=1e-6)
        assert np.allclose(iop[3:], [0, 0, -1])
        # the first pixel: the first bin along u, the superior row
        assert np.allclose(float(det.ImagePositionPatient[2]), geometry.row_positions(cam.n_rows, cam.bin_mm)[0])
    out = tmp_path / "two.nii.gz"
    reconstruct_file(path, out, {"filter": "ram-lak", "cutoff_cycles_per_cm": None})
    vol, aff = load_nifti(out)
    for name, (got, _) in _centroids(vol, aff).items():
        assert np.allclose(got, BLOBS[name][0], atol=2.0), (name, got)


def test_an_orientation_that_contradicts_the_angle_is_refused(tmp_path):
    cam = Camera(n_bins=24, bin_mm=6.0, n_views=24, n_heads=1, rotation="CC", start_angle_deg=0.0,
                 collimator_fwhm_mm=0.0, collimator_fwhm_slope=0.0, mu_per_cm=0.0)
    path = _write(tmp_path, cam, "bad")
    ds = pydicom.dcmread(path)
    # columns along y: a detector at 90 or 270 degrees, while StartAngle says 0 (the old, non-standard convention's
    # files would disagree like this)
    ds.DetectorInformationSequence[0].ImageOrientationPatient = ["0", "1", "0", "0", "0", "-1"]
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(InputError, match="disagrees with its StartAngle") as err:
        read_projections(path)
    assert str(path) in str(err.value)


def test_a_placeholder_orientation_follows_the_angle(tmp_path, caplog):
    # identity orientation (rows along y): not a projection frame's orientation; the StartAngle rules
    cam = Camera(n_bins=40, bin_mm=4.0, n_views=60, n_heads=1, rotation="CW", start_angle_deg=180.0,
                 collimator_fwhm_mm=0.0, collimator_fwhm_slope=0.0, mu_per_cm=0.0)
    path = _write(tmp_path, cam, "placeholder")
    ds = pydicom.dcmread(path)
    ds.DetectorInformationSequence[0].ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    del ds.DetectorInformationSequence[0].ImagePositionPatient
    ds.save_as(path, enforce_file_format=True)
    out = tmp_path / "placeholder.nii.gz"
    with caplog.at_level("WARNING"):
        summary = reconstruct_file(path, out, {"filter": "ram-lak", "cutoff_cycles_per_cm": None})
    assert "following StartAngle" in caplog.text and summary["first_row_z_mm"] is None
    vol, aff = load_nifti(out)
    for name, (got, _) in _centroids(vol, aff).items():
        assert np.allclose(got, BLOBS[name][0], atol=2.0), (name, got)
