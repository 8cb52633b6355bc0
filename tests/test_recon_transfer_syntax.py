"""Compressed NM projections decode to the same counts (pydicom + pylibjpeg plugins); what cannot be decoded
is named with its transfer syntax and the package that decodes it.

Encoders are independent of the decoders where possible: DCMTK (dcmcjpeg, dcmcjpls; Debian package dcmtk,
installed by `make test` as root) for JPEG Lossless and JPEG-LS, pydicom's own RLE encoder and OpenJPEG
(pylibjpeg-openjpeg) for JPEG 2000.
"""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
from pydicom.uid import JPEG2000Lossless, RLELossless  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from test_recon_dicom import coded_frames, make_nm, save  # noqa: E402

from datxai.io import InputError  # noqa: E402
from datxai.recon import read_projections  # noqa: E402


@pytest.fixture
def plain(tmp_path, rng):
    frames = coded_frames(2, 12, rows=32, bins=32).astype(np.int64)
    frames = (frames + rng.poisson(40.0, frames.shape)).astype(np.uint16)  # not constant: real entropy coding
    return save(make_nm(frames, [0.0, 180.0], 15.0, "CW"), tmp_path / "plain.dcm")


def _reference(path):
    p = read_projections(path)
    return p.frames, p.angles_deg


@pytest.mark.parametrize("uid", [RLELossless, JPEG2000Lossless], ids=["rle", "jpeg2000"])
def test_pydicom_encoded_files_decode_to_the_same_counts(plain, tmp_path, uid):
    ds = pydicom.dcmread(plain)
    ds.compress(uid)
    out = save(ds, tmp_path / "c.dcm")
    assert pydicom.dcmread(out, stop_before_pixels=True).file_meta.TransferSyntaxUID == uid
    frames, angles = _reference(plain)
    p = read_projections(out)
    np.testing.assert_array_equal(p.frames, frames)
    np.testing.assert_array_equal(p.angles_deg, angles)


@pytest.mark.parametrize("tool, args, uid", [
    ("dcmcjpeg", ["+e1"], "1.2.840.10008.1.2.4.70"),   # JPEG Lossless, first-order prediction (process 14, SV1)
    ("dcmcjpls", ["+el"], "1.2.840.10008.1.2.4.80"),   # JPEG-LS lossless
], ids=["jpeg-lossless", "jpeg-ls"])
def test_dcmtk_encoded_files_decode_to_the_same_counts(plain, tmp_path, tool, args, uid):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} (Debian package dcmtk) is not installed")
    out = tmp_path / "c.dcm"
    subprocess.run([tool, *args, str(plain), str(out)], check=True, capture_output=True, timeout=120)
    assert str(pydicom.dcmread(out, stop_before_pixels=True).file_meta.TransferSyntaxUID) == uid
    frames, _ = _reference(plain)
    np.testing.assert_array_equal(read_projections(out).frames, frames)


def test_an_undecodable_syntax_names_itself_and_its_package(plain, tmp_path, monkeypatch):
    """JPEG 2000 without a working openjpeg plugin: the message names the syntax and pylibjpeg-openjpeg."""
    ds = pydicom.dcmread(plain)
    ds.compress(JPEG2000Lossless)
    out = save(ds, tmp_path / "c.dcm")

    def no_decoder(self, *a, **k):
        raise RuntimeError("Unable to decompress 'JPEG 2000 Image Compression (Lossless Only)' pixel data because "
                           "all plugins are missing dependencies:\n    pylibjpeg - requires numpy, pylibjpeg")

    monkeypatch.setattr(pydicom.dataset.Dataset, "pixel_array", property(no_decoder))
    with pytest.raises(InputError) as err:
        read_projections(out)
    msg = str(err.value)
    assert str(out) in msg and "JPEG 2000 Image Compression (Lossless Only) (1.2.840.10008.1.2.4.90)" in msg
    assert "pylibjpeg and pylibjpeg-openjpeg" in msg and "pip install pylibjpeg pylibjpeg-openjpeg" in msg
