"""Bad DICOM projections: reconstruction refuses them by file name and problem, writes nothing, touches nothing.

Each case starts from a camera export written by the synthetic cohort's own
DICOM writer (:func:`datxai.simulate.dicom.write_nm`, with planted fake
identifiers), breaks one thing the way a user's data breaks (half-copied file,
wrong series exported, edited header), and runs the reconstruction stage
(:func:`datxai.recon.reconstruct_file`, what the workflow's rule calls).
"""

import numpy as np
import pydicom
import pytest
from reliability_helpers import assert_clear_error, assert_nothing_written, assert_untouched, tree_state

from datxai.io import InputError
from datxai.recon import reconstruct_file
from datxai.simulate.camera import Camera
from datxai.simulate.dicom import fake_identity, write_nm

CAMERA = dict(n_bins=16, bin_mm=8.0, n_views=16, n_heads=2, rotation="CW")


@pytest.fixture(scope="module")
def good_dicom(tmp_path_factory):
    """A valid 2-head camera export (16 views of 16 x 16 bins) with planted identifiers."""
    cam = Camera.from_config(CAMERA)
    rng = np.random.default_rng(3)
    counts = rng.poisson(50.0, size=(cam.n_views, cam.n_rows, cam.n_bins))
    identity = fake_identity(7, "sub-0001", 70, "F")
    path = tmp_path_factory.mktemp("good") / "sub-0001.dcm"
    write_nm(path, counts, cam, "sub-0001", identity, 7, 70, "F", 170.0)
    return path, identity


def test_the_unbroken_export_reconstructs(good_dicom, tmp_path):
    """The starting point is valid: any refusal below comes from the one broken thing."""
    summary = reconstruct_file(good_dicom[0], tmp_path / "ok.nii.gz")
    assert (tmp_path / "ok.nii.gz").is_file() and summary["n_frames"] == 16


def _edit(ds, kind):
    rot = ds.RotationInformationSequence[0]
    if kind == "other modality (CT)":
        ds.Modality, ds.SOPClassUID = "CT", "1.2.840.10008.5.1.4.1.1.2"
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    elif kind == "NumberOfFrames disagrees with heads x views":
        ds.NumberOfFrames = 15
    elif kind == "NumberOfFramesInRotation disagrees":
        rot.NumberOfFramesInRotation = 7
    elif kind == "DetectorVector of the wrong length":
        ds.DetectorVector = list(ds.DetectorVector)[:-1]
    elif kind == "a view stored twice":
        v = list(ds.AngularViewVector)
        v[1] = v[0]
        ds.AngularViewVector = v
    elif kind == "both heads at the same start angle":
        ds.DetectorInformationSequence[1].StartAngle = ds.DetectorInformationSequence[0].StartAngle
    elif kind == "angles that do not cover 180 degrees":
        rot.AngularStep = 5.0
    elif kind == "missing PixelSpacing":
        del ds.PixelSpacing
    elif kind == "reconstructed slices instead of projections":
        ds.ImageType = ["ORIGINAL", "PRIMARY", "RECON TOMO", "EMISSION"]
    else:
        raise AssertionError(kind)


CASES = [
    # (kind, what the message must say)
    ("not DICOM (a CSV)", r"not a DICOM file"),
    ("empty file (copy never started)", r"not a DICOM file|unreadable DICOM header"),
    ("truncated in the header", r"no pixel data: the file is truncated"),
    ("truncated in the pixel data", r"pixel data truncated or unreadable"),
    ("other modality (CT)", r"not a nuclear-medicine image \(Modality 'CT'"),
    ("NumberOfFrames disagrees with heads x views", r"NumberOfFrames is 15 but .* = 16"),
    ("NumberOfFramesInRotation disagrees", r"NumberOfFrames is 16 but .*7 views \(NumberOfFramesInRotation\) = 14"),
    ("DetectorVector of the wrong length", r"DetectorVector has 15 entries but the file has 16 frames"),
    ("a view stored twice", r"do not give each detector x view exactly once"),
    ("both heads at the same start angle", r"two frames have the same angle"),
    ("angles that do not cover 180 degrees", r"cover about \d+ of the 180 degrees"),
    ("missing PixelSpacing", r"missing PixelSpacing \(bin size in mm\)"),
    ("reconstructed slices instead of projections", r"is not a tomographic acquisition"),
]


def _broken(good, kind, folder):
    path = folder / "sub-0001.dcm"
    data = good.read_bytes()
    if kind == "not DICOM (a CSV)":
        path.write_text("subject,age\nsub-0001,70\n")
    elif kind == "empty file (copy never started)":
        path.write_bytes(b"")
    elif kind == "truncated in the header":
        path.write_bytes(data[:400])
    elif kind == "truncated in the pixel data":
        path.write_bytes(data[: len(data) - 1000])
    else:
        ds = pydicom.dcmread(good)
        _edit(ds, kind)
        ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.parametrize("kind, problem", CASES, ids=[c[0] for c in CASES])
def test_bad_projections_are_refused(good_dicom, tmp_path, kind, problem, capsys):
    good, identity = good_dicom
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    path = _broken(good, kind, inputs)
    before = tree_state(inputs)
    with pytest.raises(InputError) as err:
        reconstruct_file(path, out / "recon" / "sub-0001_spect.nii.gz")
    msg = assert_clear_error(err, path, problem)
    # the message is safe to log: nothing from the header that identifies the person
    assert not [v for v in identity.values() if str(v) in msg], msg
    assert_nothing_written(out)
    assert_untouched(before, inputs)
    with capsys.disabled():
        print(f"\n[bad input] DICOM {kind}: {type(err.value).__name__}: {' | '.join(msg.splitlines())}")
