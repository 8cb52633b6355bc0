"""One synthetic subject end to end: DICOM NM export, determinism, counts, truth (coarse phantom, small camera)."""

import copy
import json

import numpy as np
import pydicom
import pytest

from datxai import geometry
from datxai.config import load_config
from datxai.io import read_tsv
from datxai.simulate import cohort, phantom
from datxai.simulate.camera import Camera
from datxai.simulate.dicom import NM_IMAGE_STORAGE, frame_angles_from_header


@pytest.fixture(scope="module")
def setup(repo_root, tmp_path_factory):
    cfg = load_config(repo_root / "config" / "config.yaml")
    sim = copy.deepcopy(cfg["simulate"])
    sim["n_subjects"] = 12
    sim["phantom_voxel_mm"] = 6.0
    sim["camera"].update(n_bins=36, bin_mm=8.0, n_views=16, n_heads=2, rotation="CW")
    d = tmp_path_factory.mktemp("cohort")
    truth = cohort.write_participants(sim, cfg["seed"], d / "participants.tsv", d / "truth" / "cohort_truth.tsv")
    grid = phantom.phantom_grid(cfg["grid"], sim["phantom_voxel_mm"])
    phantom.build_anatomy(grid, phantom.required_regions(sim)).save(d / "anatomy.npz")
    return cfg, sim, d, truth


def _run(setup, subject, out):
    cfg, sim, d, _ = setup
    paths = (out / f"{subject}.dcm", out / f"{subject}_truth.json", out / f"{subject}_activity.nii.gz")
    cohort.write_subject(subject, d / "truth" / "cohort_truth.tsv", d / "anatomy.npz", sim, cfg["grid"], cfg["seed"], *paths)
    return paths


@pytest.fixture(scope="module")
def subject_files(setup, tmp_path_factory):
    truth = setup[3]
    subject = truth.loc[truth["true_class"] == "reduced", "subject"].iloc[0]
    return subject, _run(setup, subject, tmp_path_factory.mktemp("a"))


def test_same_seed_gives_byte_identical_dicom(setup, subject_files, tmp_path):
    subject, (dcm, tj, act) = subject_files
    dcm2, tj2, act2 = _run(setup, subject, tmp_path)
    assert dcm.read_bytes() == dcm2.read_bytes()
    assert json.loads(tj.read_text()) == json.loads(tj2.read_text())
    other = setup[3]["subject"].iloc[-1] if setup[3]["subject"].iloc[-1] != subject else setup[3]["subject"].iloc[0]
    dcm3 = _run(setup, other, tmp_path)[0]
    assert pydicom.dcmread(dcm3).pixel_array.tobytes() != pydicom.dcmread(dcm).pixel_array.tobytes()


def test_dicom_reads_back_as_a_camera_export(setup, subject_files):
    _, sim, _, _ = setup
    subject, (dcm, tj, _) = subject_files
    cam = Camera.from_config(sim["camera"])
    ds = pydicom.dcmread(dcm)
    assert ds.SOPClassUID == NM_IMAGE_STORAGE and ds.Modality == "NM" and ds.ImageType[2] == "TOMO"
    assert int(ds.NumberOfFrames) == 16 and (ds.Rows, ds.Columns) == (36, 36)
    assert [float(v) for v in ds.PixelSpacing] == [8.0, 8.0]
    assert list(ds.DetectorVector) == [1] * 8 + [2] * 8 and list(ds.AngularViewVector) == list(range(1, 9)) * 2
    rot = ds.RotationInformationSequence[0]
    starts = [float(d.StartAngle) for d in ds.DetectorInformationSequence]
    angles = geometry.frame_angles(starts, float(rot.AngularStep), int(rot.NumberOfFramesInRotation), rot.RotationDirection)
    np.testing.assert_allclose(angles, cam.angles_deg())
    np.testing.assert_allclose(np.sort(angles), np.arange(16) * 22.5)  # two heads cover 360 deg once
    np.testing.assert_allclose(frame_angles_from_header(ds), angles)
    assert ds.pixel_array.dtype == np.uint16 and ds.pixel_array.shape == (16, 36, 36)


def test_counts_in_the_stated_range_and_recorded(setup, subject_files):
    _, sim, _, truth = setup
    subject, (dcm, tj, _) = subject_files
    counts = pydicom.dcmread(dcm).pixel_array.astype(np.int64)
    rec = json.loads(tj.read_text())
    lo, hi = (v * 1e6 for v in sim["camera"]["counts_mcounts"])
    total = counts.sum()
    assert rec["total_counts"] == total
    assert lo - 5 * np.sqrt(hi) <= total <= hi + 5 * np.sqrt(hi)  # expected total in range, +- 5 Poisson sigma
    assert abs(total - rec["expected_counts"]) < 5 * np.sqrt(rec["expected_counts"])


def test_truth_records_pose_planted_and_identifiers(setup, subject_files):
    cfg, sim, d, truth = setup
    subject, (dcm, tj, act) = subject_files
    rec = json.loads(tj.read_text())
    # the subject job simulates from the written truth table (6 significant digits)
    row = cohort.subject_row(read_tsv(d / "truth" / "cohort_truth.tsv"), subject)
    np.testing.assert_allclose(rec["pose"], cohort.subject_pose(row), rtol=1e-12)
    np.testing.assert_allclose(rec["pose"], cohort.subject_pose(cohort.subject_row(truth, subject)), atol=1e-4)
    assert rec["true_class"] == "reduced" and rec["planted"]
    assert {p["relation"] for p in rec["planted"]} <= {"ipsi", "contra"}
    assert all(p["side"] == rec["affected_side"] for p in rec["planted"] if p["relation"] == "ipsi")
    ds = pydicom.dcmread(dcm)
    for key, value in rec["dicom_identifiers"].items():
        assert str(ds.data_element(key).value) == value, key
    # the analysis-grid activity: MNI grid of the config, unposed, background ~1, striatum hot
    from datxai.grid import Grid
    from datxai.io import load_nifti

    grid = Grid.from_config(cfg["grid"])
    data, aff = load_nifti(act, shape=grid.shape)
    np.testing.assert_allclose(aff, grid.affine)
    assert data.max() > 1.5 and np.median(data[data > 0.5]) == pytest.approx(1.1, abs=0.2)
    # participants.tsv carries no truth columns
    p = read_tsv(d / "participants.tsv")
    assert list(p.columns) == ["subject", "age", "sex", "label", "dose_mbq"]


def test_recon_reader_accepts_the_export(subject_files, setup):
    recon = pytest.importorskip("datxai.recon.dicom")
    _, (dcm, _, _) = subject_files
    proj = recon.read_projections(dcm)
    cam = Camera.from_config(setup[1]["camera"])
    np.testing.assert_allclose(proj.angles_deg, cam.angles_deg())
    assert proj.bin_mm == 8.0 and proj.frames.shape == (16, 36, 36)
    np.testing.assert_array_equal(proj.frames, pydicom.dcmread(dcm).pixel_array)


def test_unknown_subject_is_named(setup, tmp_path):
    with pytest.raises(KeyError, match="sub-0999"):
        _run(setup, "sub-0999", tmp_path)


def test_a_batch_reads_the_shared_inputs_once_and_sees_them_change(setup, subject_files, tmp_path):
    """write_subject caches the truth table and anatomy per batch (keyed on path, mtime and size)."""
    import os
    import shutil

    cfg, sim, d, truth = setup
    subject, (dcm, _, _) = subject_files
    cohort._read_batch_inputs.cache_clear()
    anatomy = tmp_path / "anatomy.npz"
    shutil.copy(d / "anatomy.npz", anatomy)
    truth_tsv = d / "truth" / "cohort_truth.tsv"

    def run(out):
        out.mkdir()
        paths = (out / "a.dcm", out / "a.json", out / "a.nii.gz")
        cohort.write_subject(subject, truth_tsv, anatomy, sim, cfg["grid"], cfg["seed"], *paths)
        return pydicom.dcmread(paths[0]).pixel_array

    first = run(tmp_path / "1")
    second = run(tmp_path / "2")
    info = cohort._read_batch_inputs.cache_info()
    assert (info.hits, info.misses) == (1, 1)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, pydicom.dcmread(dcm).pixel_array)  # same as from the original file
    _, anat = cohort._batch_inputs(truth_tsv, anatomy)
    assert not anat.intracranial.flags.writeable and not any(p.flags.writeable for p in anat.prob.values())

    # a rewritten anatomy (no extracerebral shell) is read again, not served from the cache
    loaded = phantom.PhantomAnatomy.load(anatomy)
    loaded.shell = np.zeros_like(loaded.shell)
    loaded.save(anatomy)
    os.utime(anatomy, ns=(os.stat(anatomy).st_atime_ns, os.stat(anatomy).st_mtime_ns + 10**9))
    third = run(tmp_path / "3")
    assert cohort._read_batch_inputs.cache_info().misses == 2
    assert third.tobytes() != first.tobytes()

    (tmp_path / "gone.npz").unlink(missing_ok=True)
    with pytest.raises(Exception, match="gone.npz: phantom anatomy not found"):
        cohort.write_subject(subject, truth_tsv, tmp_path / "gone.npz", sim, cfg["grid"], cfg["seed"],
                             tmp_path / "x.dcm", tmp_path / "x.json", tmp_path / "x.nii.gz")
