import os

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from datxai.io import InputError, atomic_path, load_nifti, read_tsv, save_nifti, write_tsv


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.nii.gz"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_atomic_outputs_get_umask_permissions(tmp_path):
    path = save_nifti(np.ones((3, 4, 5)), np.eye(4), tmp_path / "a.nii.gz")
    umask = os.umask(0)
    os.umask(umask)
    assert (path.stat().st_mode & 0o777) == (0o666 & ~umask)


def test_nifti_round_trip_keeps_data_and_affine(tmp_path, rng):
    data = rng.random((7, 8, 9)).astype(np.float32)
    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    aff[:3, 3] = [-6, -7, -8]
    p = save_nifti(data, aff, tmp_path / "x.nii.gz")
    back, back_aff = load_nifti(p, shape=(7, 8, 9))
    np.testing.assert_array_equal(back, data)
    np.testing.assert_allclose(back_aff, aff)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: (np.full((3, 4, 5), np.nan, np.float32), np.eye(4)), "NaN or Inf"),
        (lambda d: (np.zeros((3, 4, 5), np.float32), np.eye(4)), "all zero"),
        (lambda d: (np.ones((3, 4, 6), np.float32), np.eye(4)), "expected shape"),
        (lambda d: (np.ones((3, 4, 5), np.float32), np.diag([1.0, 0.0, 1.0, 1.0])), "not invertible"),
        (lambda d: (np.ones((3, 4, 5, 2), np.float32), np.eye(4)), r"expected a 3-D image, got shape \(3, 4, 5, 2\) "
                                                                   r"\(a series of volumes: give one\)"),
    ],
)
def test_load_nifti_names_file_and_problem(tmp_path, make, message):
    data, aff = make(None)
    path = tmp_path / "bad.nii.gz"
    img = nib.Nifti1Image(data, None)
    img.header.set_sform(aff, code=1)  # set directly: nibabel will not decompose a singular affine
    nib.save(img, path)
    before = path.read_bytes()
    with pytest.raises(InputError, match=message) as err:
        load_nifti(path, shape=(3, 4, 5))
    assert str(path) in str(err.value)
    assert path.read_bytes() == before  # input untouched


def test_load_nifti_rejects_corrupt_and_missing_files(tmp_path):
    bad = tmp_path / "trunc.nii.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(InputError, match="not a readable NIfTI"):
        load_nifti(bad)
    with pytest.raises(InputError, match="file not found"):
        load_nifti(tmp_path / "missing.nii.gz")


def test_tsv_round_trip_keeps_ids_as_strings(tmp_path):
    df = pd.DataFrame({"subject": ["sub-0001", "sub-0010"], "x": [1.5, 2.0]})
    write_tsv(df, tmp_path / "t.tsv")
    back = read_tsv(tmp_path / "t.tsv", required=["subject", "x"])
    assert back["subject"].tolist() == ["sub-0001", "sub-0010"]
    with pytest.raises(InputError, match="missing column"):
        read_tsv(tmp_path / "t.tsv", required=["age"])


def test_a_single_volume_stored_as_4d_reads_as_3d(tmp_path, rng):
    """(x, y, z, 1), as some converters write one volume, is the same image as (x, y, z)."""
    data = rng.random((7, 8, 9)).astype(np.float32)
    aff = np.diag([2.0, 3.0, 4.0, 1.0])
    nib.save(nib.Nifti1Image(data[..., None], aff), tmp_path / "v4.nii.gz")
    back, back_aff = load_nifti(tmp_path / "v4.nii.gz", shape=(7, 8, 9))
    np.testing.assert_array_equal(back, data)
    np.testing.assert_allclose(back_aff, aff)
