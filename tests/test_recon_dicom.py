"""DICOM NM projection reader (datxai.recon.dicom) on files built here with pydicom."""

import gzip
import json

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.sequence import Sequence  # noqa: E402
from pydicom.tag import Tag  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, generate_uid  # noqa: E402

from datxai.geometry import bin_positions, frame_angles, native_affine, row_positions  # noqa: E402
from datxai.io import InputError, load_nifti  # noqa: E402
from datxai.recon import read_projections, reconstruct_file  # noqa: E402

NM = "1.2.840.10008.5.1.4.1.1.20"
NAME, PID = "Doe^Jane", "PID-8731-XQ"


def make_nm(frames_by_head, starts, step, direction, bin_mm=4.0, slope=None, intercept=None,
            order=None, rot_start=None, det_start=True):
    """A multi-frame NM TOMO dataset; ``frames_by_head`` is ``(n_heads, views, rows, bins)`` (uint16-able)."""
    frames_by_head = np.asarray(frames_by_head)
    n_heads, views, rows, bins = frames_by_head.shape
    n = n_heads * views
    det_v = np.repeat(np.arange(1, n_heads + 1), views)
    view_v = np.tile(np.arange(1, views + 1), n_heads)
    pixels = frames_by_head.reshape(n, rows, bins)
    if order is not None:  # store the frames in another order, described by the vectors
        det_v, view_v, pixels = det_v[order], view_v[order], pixels[order]

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = NM
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = NM, meta.MediaStorageSOPInstanceUID, "NM"
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.StudyDate = NAME, PID, "19480317", "20190612"
    ds.AccessionNumber = "ACC99812"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "TOMO", "EMISSION"]
    ds.NumberOfFrames = n
    ds.Rows, ds.Columns = rows, bins
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelSpacing = [bin_mm, bin_mm]
    ds.FrameIncrementPointer = [Tag(0x0054, 0x0010), Tag(0x0054, 0x0020), Tag(0x0054, 0x0050), Tag(0x0054, 0x0090)]
    ds.NumberOfEnergyWindows, ds.EnergyWindowVector = 1, [1] * n
    ds.NumberOfDetectors, ds.DetectorVector = n_heads, [int(v) for v in det_v]
    ds.NumberOfRotations, ds.RotationVector = 1, [1] * n
    ds.AngularViewVector = [int(v) for v in view_v]
    dets = []
    for h in range(n_heads):
        d = Dataset()
        if det_start:
            d.StartAngle = starts[h]
        d.RadialPosition = 200.0
        dets.append(d)
    ds.DetectorInformationSequence = Sequence(dets)
    rot = Dataset()
    rot.StartAngle = starts[0] if rot_start is None else rot_start
    rot.AngularStep, rot.RotationDirection, rot.NumberOfFramesInRotation = step, direction, views
    rot.ScanArc = step * views
    ds.RotationInformationSequence = Sequence([rot])
    if slope is not None:
        ds.RescaleSlope = slope
    if intercept is not None:
        ds.RescaleIntercept = intercept
    ds.PixelData = np.ascontiguousarray(pixels, dtype=np.uint16).tobytes()
    return ds


def save(ds, path):
    ds.save_as(path, enforce_file_format=True)
    return path


def coded_frames(n_heads, views, rows=5, bins=7):
    """Frames whose constant value encodes (head, view): 100 * (head + 1) + view."""
    h = np.arange(n_heads)[:, None, None, None]
    v = np.arange(views)[None, :, None, None]
    return np.broadcast_to(100 * (h + 1) + v, (n_heads, views, rows, bins)).astype(np.uint16)


def test_two_heads_cw_with_shuffled_frames(tmp_path, rng):
    views = 12
    frames = coded_frames(2, views, rows=5, bins=7)
    order = rng.permutation(2 * views)
    p = read_projections(save(make_nm(frames, [0.0, 180.0], 15.0, "CW", order=order), tmp_path / "a.dcm"))
    assert (p.n_frames, p.n_rows, p.n_bins, p.n_heads, p.views_per_head) == (24, 5, 7, 2, 12)
    assert p.frames.dtype == np.float32 and p.bin_mm == 4.0 and p.direction == "CW"
    # frames come back ordered by head then view, whatever the storage order
    expected = (100 * (np.repeat([1, 2], views)) + np.tile(np.arange(views), 2)).astype(np.float32)
    assert np.array_equal(p.frames[:, 0, 0], expected)
    # CW: angles fall from each head's start; head 2 starts at 180
    assert np.allclose(p.angles_deg[:3], [0.0, 345.0, 330.0])
    assert np.allclose(p.angles_deg[views:views + 2], [180.0, 165.0])
    assert np.allclose(p.angles_deg, frame_angles([0.0, 180.0], 15.0, views, "CW"))
    assert np.array_equal(p.detector, np.repeat([0, 1], views))


def test_one_head_cc_from_rotation_start_and_rescale(tmp_path):
    views = 18
    frames = coded_frames(1, views, rows=4, bins=9)
    ds = make_nm(frames, [90.0], 20.0, "CC", slope=0.5, intercept=-3.0, det_start=False, rot_start=90.0)
    p = read_projections(save(ds, tmp_path / "b.dcm"))
    assert np.allclose(p.angles_deg, (90.0 + 20.0 * np.arange(views)) % 360.0)
    assert np.allclose(p.frames[:, 0, 0], 0.5 * (100 + np.arange(views)) - 3.0)
    assert p.start_angles_deg == (90.0,)


def test_missing_detector_start_with_two_heads_is_refused(tmp_path):
    # with two heads the second head's start cannot be guessed from the rotation's
    ds = make_nm(coded_frames(2, 6), [0.0, 180.0], 30.0, "CW", det_start=False)
    with pytest.raises(InputError, match="start angle"):
        read_projections(save(ds, tmp_path / "c.dcm"))


def _broken(tmp_path, kind):
    ds = make_nm(coded_frames(2, 6), [0.0, 180.0], 30.0, "CW")
    path = tmp_path / f"{kind}.dcm"
    if kind == "not_dicom":
        path.write_text("subject,age\nsub-0001,70\n")
        return path
    if kind == "truncated":
        save(ds, path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) - 200])
        return path
    if kind == "modality":
        ds.Modality, ds.SOPClassUID = "CT", "1.2.840.10008.5.1.4.1.1.2"
    elif kind == "frame_count":
        ds.NumberOfFrames = 11
    elif kind == "frames_in_rotation":
        ds.RotationInformationSequence[0].NumberOfFramesInRotation = 5
    elif kind == "pixel_spacing":
        del ds.PixelSpacing
    elif kind == "same_start":
        ds.DetectorInformationSequence[1].StartAngle = 0.0
    elif kind == "short_arc":
        ds.RotationInformationSequence[0].AngularStep = 10.0  # 2 x 6 views of 10 deg: 60 of 180 deg
    elif kind == "duplicate_view":
        ds.AngularViewVector = [1, 1, 3, 4, 5, 6] * 2
    elif kind == "direction":
        ds.RotationInformationSequence[0].RotationDirection = "XX"
    elif kind == "recon":
        ds.ImageType = ["ORIGINAL", "PRIMARY", "RECON TOMO", "EMISSION"]
    return save(ds, path)


@pytest.mark.parametrize(
    "kind, match",
    [("not_dicom", "not a DICOM"), ("truncated", "truncated|unreadable"), ("modality", "not a nuclear"),
     ("frame_count", "NumberOfFrames"), ("frames_in_rotation", "NumberOfFrames"), ("pixel_spacing", "PixelSpacing"),
     ("same_start", "same angle"), ("short_arc", "cover"), ("duplicate_view", "exactly once"),
     ("direction", "RotationDirection"), ("recon", "TOMO")],
)
def test_broken_files_are_refused_by_name(tmp_path, kind, match):
    path = _broken(tmp_path, kind)
    with pytest.raises(InputError, match=match) as err:
        read_projections(path)
    assert str(path) in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_projections(tmp_path / "nope.dcm")


def test_reconstruct_file_geometry_and_no_identifiers(tmp_path, caplog):
    # two heads, CW, a sphere at a known (x, y, z): the DICOM header geometry, the
    # angle convention, FBP and native_affine must put it back where it was
    n_bins, n_rows, bin_mm, views, step = 33, 9, 4.0, 30, 6.0
    starts = [30.0, 210.0]
    theta = frame_angles(starts, step, views, "CW").reshape(2, views)
    x0, y0, z0, r = -20.0, 12.0, -8.0, 10.0
    s = bin_positions(n_bins, bin_mm)
    frames = np.zeros((2, views, n_rows, n_bins))
    for k, z in enumerate(row_positions(n_rows, bin_mm)):
        rk2 = r**2 - (z - z0) ** 2
        if rk2 > 0:
            s0 = x0 * np.cos(np.deg2rad(theta)) - y0 * np.sin(np.deg2rad(theta))  # along u(theta) (DICOM)
            frames[:, :, k, :] = 2 * np.sqrt(np.clip(rk2 - (s[None, None] - s0[..., None]) ** 2, 0, None))
    counts = np.round(frames * 50).astype(np.uint16)  # 50 counts per mm of path, slope brings it back
    dcm = save(make_nm(counts, starts, step, "CW", bin_mm=bin_mm, slope=0.02), tmp_path / "sub.dcm")
    out = tmp_path / "recon" / "sub_spect.nii.gz"
    with caplog.at_level("DEBUG"):
        summary = reconstruct_file(dcm, out, {"filter": "ram-lak", "cutoff_cycles_per_cm": None})
    vol, aff = load_nifti(out)
    assert vol.shape == (n_bins, n_bins, n_rows)
    assert np.allclose(aff, native_affine(n_bins, n_rows, bin_mm))
    w = np.clip(vol, 0, None) * (vol > 0.5 * vol.max())
    ijk = np.array(np.nonzero(w)).T
    mm = (np.c_[ijk, np.ones(len(ijk))] @ aff.T)[:, :3]
    centroid = (mm * w[tuple(ijk.T)][:, None]).sum(0) / w.sum()
    assert np.allclose(centroid, (x0, y0, z0), atol=1.0)  # sub-voxel (4 mm bins)
    assert vol.max() == pytest.approx(1.0, rel=0.1)  # value 1 per mm inside the sphere
    # no identifying header data anywhere: image bytes, header, summary, log
    raw = gzip.decompress(out.read_bytes())
    text = json.dumps(summary) + caplog.text
    for secret in (NAME, PID, "19480317", "20190612", "ACC99812", "Doe"):
        assert secret.encode() not in raw and secret not in text


def test_cli_reconstruct_and_refusal(tmp_path):
    import argparse

    from datxai.recon.cli import add_cli

    parser = argparse.ArgumentParser()
    add_cli(parser.add_subparsers())

    def main(argv):  # as datxai.cli.main, without importing every other stage
        args = parser.parse_args(argv)
        try:
            return args.func(args)
        except ValueError:
            return 2

    frames = np.zeros((2, 10, 4, 15), np.uint16)
    frames[..., 5:10] = 40  # a centred slab: a disc-like object in every slice
    dcm = save(make_nm(frames, [0.0, 180.0], 18.0, "CC", bin_mm=5.0), tmp_path / "s.dcm")
    out = tmp_path / "o" / "s.nii.gz"
    assert main(["reconstruct", str(dcm), str(out), "--chang", "--output-size", "16", "--filter", "hann"]) == 0
    vol, aff = load_nifti(out)
    assert vol.shape == (16, 16, 4) and np.allclose(aff, native_affine(16, 4, 5.0))
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"\x00" * 300)
    assert main(["reconstruct", str(bad), str(tmp_path / "o" / "bad.nii.gz")]) == 2
    assert not (tmp_path / "o" / "bad.nii.gz").exists()


@pytest.mark.parametrize("rotation, n_heads", [("CW", 2), ("CC", 1)])
def test_reads_the_synthetic_camera_export(tmp_path, rotation, n_heads):
    # the simulator's exporter (another stage) and this reader must agree on the geometry
    sim = pytest.importorskip("datxai.simulate.dicom")
    from datxai.simulate.camera import Camera

    cam = Camera(n_bins=24, bin_mm=5.0, n_views=36, n_heads=n_heads, rotation=rotation)
    theta = np.deg2rad(cam.angles_deg())[:, None]
    s = bin_positions(cam.n_bins, cam.bin_mm)[None, :]
    x0, y0 = 15.0, -25.0  # a rod along z, off centre
    sino = 2 * np.sqrt(np.clip(12.0**2 - (s - x0 * np.cos(theta) + y0 * np.sin(theta)) ** 2, 0, None))  # s along u(theta)
    counts = np.round(10 * np.repeat(sino[:, None, :], cam.n_rows, axis=1)).astype(np.int64)
    ident = sim.fake_identity(1, "sub-0001", 70, "F")
    path = sim.write_nm(tmp_path / "sub-0001.dcm", counts, cam, "sub-0001", ident, 1, 70, "F", 150.0)
    p = read_projections(path)
    assert np.allclose(p.angles_deg, cam.angles_deg()) and p.direction == rotation
    assert np.array_equal(p.frames, counts.astype(np.float32))
    out = tmp_path / "sub-0001_spect.nii.gz"
    summary = reconstruct_file(path, out, {"filter": "ram-lak", "cutoff_cycles_per_cm": None})
    vol, aff = load_nifti(out)
    w = vol[..., cam.n_rows // 2] * (vol[..., cam.n_rows // 2] > 0.5 * vol.max())
    c = (np.arange(cam.n_bins) - (cam.n_bins - 1) / 2) * cam.bin_mm
    assert (w.sum(1) * c).sum() / w.sum() == pytest.approx(x0, abs=1.0)
    assert (w.sum(0) * c).sum() / w.sum() == pytest.approx(y0, abs=1.0)
    raw = gzip.decompress(out.read_bytes()).decode("latin-1") + json.dumps(summary)
    for value in ident.values():
        assert value not in raw


@pytest.mark.parametrize("position", ["HFS", "FFS", None])
def test_supine_positions_are_read(tmp_path, position):
    ds = make_nm(coded_frames(1, 12), [0.0], 30.0, "CC")
    if position:
        ds.PatientPosition = position
    assert read_projections(save(ds, tmp_path / "p.dcm")).n_frames == 12


@pytest.mark.parametrize("position", ["HFP", "FFP", "HFDR", "FFDL"])
def test_prone_and_decubitus_positions_are_refused(tmp_path, position):
    ds = make_nm(coded_frames(1, 12), [0.0], 30.0, "CC")
    ds.PatientPosition = position
    path = save(ds, tmp_path / "p.dcm")
    with pytest.raises(InputError, match=f"{path}: PatientPosition '{position}' is not supported"):
        read_projections(path)


def test_a_prone_orientation_code_is_refused(tmp_path):
    """GE writes the position as codes (recumbent + modifier), not as PatientPosition."""
    ds = make_nm(coded_frames(1, 12), [0.0], 30.0, "CC")
    orient, mod = Dataset(), Dataset()
    orient.CodeValue, orient.CodingSchemeDesignator, orient.CodeMeaning = "F-10450", "99SDM", "recumbent"
    mod.CodeValue, mod.CodingSchemeDesignator, mod.CodeMeaning = "F-10310", "99SDM", "prone"
    orient.PatientOrientationModifierCodeSequence = Sequence([mod])
    ds.PatientOrientationCodeSequence = Sequence([orient])
    with pytest.raises(InputError, match="patient orientation 'prone'"):
        read_projections(save(ds, tmp_path / "p.dcm"))
