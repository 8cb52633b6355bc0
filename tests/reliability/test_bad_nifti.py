"""Bad NIfTI images: refused by file name and problem where they are read; nothing written, nothing touched.

Two entry points are tried: :func:`datxai.io.load_nifti` (every stage reads
images through it) and the normalisation stage (:func:`run_normalize`, where
a user's NIfTI cohort, ``cohort.source: nifti``, enters the chain), so that the
message also survives the nipype workflow in between.
"""

import gzip

import nibabel as nib
import numpy as np
import pytest
from reliability_helpers import assert_clear_error, assert_nothing_written, assert_untouched, tree_state

from datxai.grid import Grid
from datxai.io import InputError, load_nifti, save_nifti
from datxai.register.template import phantom_image
from datxai.register.workflow import run_normalize

GRID = Grid((18, 22, 18), 8.0)
NATIVE_SHAPE = (24, 24, 20)
NATIVE = np.diag([6.0, 6.0, 6.0, 1.0])
NATIVE[:3, 3] = -6.0 * (np.array(NATIVE_SHAPE) - 1) / 2
OPTIONS = dict(fwhm_mm=8.0, sampling_mm=[8.0], regularization=0.01, max_iterations=5, order=1)


def _raw(path, data, affine):
    """Write without the package's checks (nibabel directly), as another tool would."""
    affine = np.asarray(affine, float)
    if abs(np.linalg.det(affine[:3, :3])) > 0:
        img = nib.Nifti1Image(np.asarray(data), affine)
    else:  # nibabel cannot make a qform of a singular affine: only the sform carries it
        img = nib.Nifti1Image(np.asarray(data), None)
        img.header.set_sform(affine, code=1)
    nib.save(img, str(path))
    return path


def _image():
    return phantom_image(NATIVE_SHAPE, NATIVE, scale=0.75, fwhm_mm=0.0) * 20 + 1


CASES = [
    # (kind, expected problem)
    ("4-D image (a dynamic series)", r"expected a 3-D image, got shape \(24, 24, 20, 2\)"),
    ("2-D image (a single slice)", r"expected a 3-D image, got shape \(24, 24\)"),
    ("non-invertible affine (zero column)", r"the affine is not invertible"),
    ("NaN voxels", r"\d+ voxels are NaN or Inf"),
    ("Inf voxels", r"\d+ voxels are NaN or Inf"),
    ("all-zero image", r"the image is all zero"),
    ("truncated .nii.gz (half-copied)", r"not a readable NIfTI image"),
    ("not a NIfTI (text)", r"not a readable NIfTI image"),
]


def _broken(kind, folder):
    path = folder / "sub-0001_spect.nii.gz"
    img, aff = _image(), NATIVE.copy()
    if kind.startswith("4-D"):
        return _raw(path, np.stack([img, img], axis=-1), aff)
    if kind.startswith("2-D"):
        return _raw(path, img[:, :, 10], aff)
    if kind.startswith("non-invertible"):
        aff[:, 2] = 0.0
        return _raw(path, img, aff)
    if kind == "NaN voxels":
        img[3, 4, 5] = np.nan
    elif kind == "Inf voxels":
        img[3, 4, 5] = np.inf
    elif kind == "all-zero image":
        img[:] = 0
    elif kind.startswith("truncated"):
        _raw(path, img, aff)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return path
    elif kind.startswith("not a NIfTI"):
        path.write_bytes(gzip.compress(b"subject\tage\nsub-0001\t70\n"))
        return path
    return _raw(path, img, aff)


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    path = tmp_path_factory.mktemp("tpl") / "template.nii.gz"
    save_nifti(phantom_image(GRID.shape, GRID.affine, scale=0.75, fwhm_mm=8.0), GRID.affine, path)
    return path


@pytest.mark.parametrize("kind, problem", CASES, ids=[c[0] for c in CASES])
def test_load_nifti_refuses(tmp_path, kind, problem, capsys):
    path = _broken(kind, tmp_path)
    before = tree_state(tmp_path)
    with pytest.raises(InputError) as err:
        load_nifti(path)
    msg = assert_clear_error(err, path, problem)
    assert_untouched(before, tmp_path)
    with capsys.disabled():
        print(f"\n[bad input] NIfTI {kind}: {type(err.value).__name__}: {' | '.join(msg.splitlines())}")


def test_wrong_grid_shape_is_refused(tmp_path):
    """MNI-space images must be on the analysis grid (datasets, statistics read them with ``shape=``)."""
    path = _raw(tmp_path / "sub-0001_space-MNI_desc-scaled_spect.nii.gz", np.ones((18, 22, 17), np.float32),
                GRID.affine)
    with pytest.raises(InputError) as err:
        load_nifti(path, shape=GRID.shape)
    assert_clear_error(err, path, r"expected shape \(18, 22, 18\), got \(18, 22, 17\)")


@pytest.mark.parametrize("kind, problem", CASES[:6], ids=[c[0] for c in CASES[:6]])
def test_normalisation_stage_refuses_a_bad_native_image(template, tmp_path, kind, problem):
    """The nipype workflow in between must not swallow the reason (the user sees file and problem)."""
    inputs, out, work = tmp_path / "in", tmp_path / "out", tmp_path / "work"
    inputs.mkdir()
    work.mkdir()
    path = _broken(kind, inputs)
    before = tree_state(inputs, template)
    with pytest.raises(InputError) as err:
        run_normalize(path, template, out / "sub-0001_space-MNI_spect.nii.gz", out / "sub-0001_affine.json",
                      GRID, work_dir=work, subject="sub-0001", **OPTIONS)
    assert_clear_error(err, path, problem)
    assert_nothing_written(out)
    assert_nothing_written(work)  # the temporary nipype folder is removed too
    assert_untouched(before, inputs, template)
