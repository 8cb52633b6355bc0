"""The per-subject affine fit against an independent implementation: SPM12's ``spm_affreg``.

SPM12 (spm_normalise's affine stage, under GNU Octave) fitted the three scans of tests/data/spm12_affreg
to the anchored template; the fixture stores its template -> native maps (its README says how they were
made; ``bench/bench_spm12.py`` remakes them). The datxai estimator, run here on the same files with the
workflow's settings, must land near SPM12's fit and near the simulated truth.

Tolerances: the two estimators differ by design (SPM's cost is approximately symmetric, its sample points
jittered, its smoothed images 8-bit; datxai's is the one-way least squares in floating point): on these
scans they differ by 0.23-0.32 mm (BENCHMARKS.md, 10 scans: median 0.30, max 0.43 mm), so 0.5 mm (1/12 of a
voxel of the 6 mm grid) is the bound; a mirrored axis, a wrong matrix convention or a lost shear moves the
fit by millimetres. Against the truth both fits are within 1.1 mm (datxai 0.71-0.84, SPM12 0.89-1.04 mm).
"""

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from datxai.geometry import mean_displacement_mm
from datxai.register.affine import estimate_affine

FIXTURE = Path(__file__).parent / "data" / "spm12_affreg"
RECORD = json.loads((FIXTURE / "spm12_affreg.json").read_text())
SUBJECTS = sorted(RECORD["true_pose"])


@pytest.fixture(scope="module")
def brain_points():
    z = np.load(FIXTURE / "brain_mask.npz")
    mask = np.unpackbits(z["mask"])[: int(np.prod(z["shape"]))].reshape(tuple(z["shape"])).astype(bool)
    ijk = np.argwhere(mask)
    return ijk @ z["affine"][:3, :3].T + z["affine"][:3, 3]


@pytest.fixture(scope="module")
def template():
    img = nib.load(FIXTURE / "template.nii.gz")
    return np.asarray(img.dataobj, dtype=np.float32), img.affine


def fit(data, affine, template):
    """datxai's fit with the settings the fixture's run used."""
    settings = RECORD["normalize"]
    return estimate_affine(data, affine, *template, sampling_mm=tuple(settings["sampling_mm"]),
                           regularization=settings["regularization"], max_iterations=settings["max_iterations"],
                           fwhm_mm=settings["smooth_fwhm_mm"])


@pytest.mark.parametrize("subject", SUBJECTS)
def test_fit_agrees_with_spm12(subject, template, brain_points):
    img = nib.load(FIXTURE / f"{subject}.nii.gz")
    result = fit(np.asarray(img.dataobj, dtype=np.float32), img.affine, template)
    assert not result.diverged, result.flags
    truth = np.asarray(RECORD["true_pose"][subject])
    for regtype, maps in RECORD["spm12_template_to_native"].items():
        spm = np.asarray(maps[subject])
        assert mean_displacement_mm(result.matrix, spm, brain_points) < 0.5, regtype
        assert mean_displacement_mm(spm, truth, brain_points) < 1.1, regtype  # the reference itself is sound
    assert mean_displacement_mm(result.matrix, truth, brain_points) < 1.0
    # the reference is not the fit under test: the fixture's SPM12 maps are not datxai's
    assert mean_displacement_mm(np.asarray(RECORD["datxai_template_to_native"][subject]),
                                np.asarray(RECORD["spm12_template_to_native"]["none"][subject]), brain_points) > 0.1


def test_a_mirrored_source_is_caught(template, brain_points):
    """The bound has teeth: the same scan mirrored left-right does not fit within it."""
    subject = SUBJECTS[0]
    img = nib.load(FIXTURE / f"{subject}.nii.gz")
    data = np.asarray(img.dataobj, dtype=np.float32)[::-1].copy()
    spm = np.asarray(RECORD["spm12_template_to_native"]["none"][subject])
    assert mean_displacement_mm(fit(data, img.affine, template).matrix, spm, brain_points) > 0.5
