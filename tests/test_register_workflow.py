"""The nipype workflow end to end in a temporary folder, the divergence policy, QC helpers and the CLI."""

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from datxai.geometry import mean_displacement_mm, rigid_affine
from datxai.grid import Grid
from datxai.io import InputError, save_nifti
from datxai.register.affine import smooth_mm
from datxai.register.qc import montage_subjects, normalize_montage, pose_from_truth, registration_errors, registration_table
from datxai.register.template import phantom_image
from datxai.register.workflow import normalize_engine, run_normalize, run_normalize_batch

GRID = Grid((26, 32, 24), 5.0, (0.0, -13.0, 9.0))
NATIVE_SHAPE = (36, 36, 34)
NATIVE = np.diag([5.0, 5.0, 5.0, 1.0])
NATIVE[:3, 3] = -5.0 * (np.array(NATIVE_SHAPE) - 1) / 2
POSE = rigid_affine([6.0, -4.0, 3.0], [7.0, -5.0, 4.0], 1.04)
OPTIONS = dict(fwhm_mm=6.0, sampling_mm=[8.0, 5.0], regularization=0.01, max_iterations=50, order=1)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    tpl = phantom_image(GRID.shape, GRID.affine, scale=0.75, fwhm_mm=8.0)
    src = phantom_image(NATIVE_SHAPE, np.linalg.inv(POSE) @ NATIVE, scale=0.75, fwhm_mm=0.0)
    src = smooth_mm(src, NATIVE, 8.0) * 30 + np.random.default_rng(0).normal(0, 0.5, NATIVE_SHAPE).astype(np.float32)
    noise = np.random.default_rng(1).normal(0, 1, NATIVE_SHAPE).astype(np.float32)
    paths = {"template": d / "tpl.nii.gz", "source": d / "src.nii.gz", "noise": d / "noise.nii.gz"}
    save_nifti(tpl, GRID.affine, paths["template"])
    save_nifti(src, NATIVE, paths["source"])
    save_nifti(noise, NATIVE, paths["noise"])
    paths["tpl_data"] = tpl
    return paths


def test_workflow_end_to_end(files, tmp_path):
    src_bytes = files["source"].read_bytes()
    out_img, out_json = tmp_path / "out" / "sub-01_space-MNI_spect.nii.gz", tmp_path / "out" / "sub-01_affine.json"
    info = run_normalize(files["source"], files["template"], out_img, out_json, GRID, work_dir=tmp_path,
                         subject="sub-01", **OPTIONS)
    img = nib.load(out_img)
    assert img.shape == GRID.shape and img.get_data_dtype() == np.float32
    np.testing.assert_allclose(img.affine, GRID.affine)
    saved = json.loads(out_json.read_text())
    assert saved["subject"] == "sub-01" and not saved["diverged"] and saved["flags"] == []
    for key in ("matrix", "parameters", "iterations", "cost", "converged", "diverged"):
        assert key in saved
    points = GRID.coords_mm()[:, files["tpl_data"] > 0.5].T
    # 5 mm voxels, 8 mm smoothing: within 1.5 mm (under a third of a voxel) of the pose that made the source
    assert mean_displacement_mm(np.asarray(info["matrix"]), POSE, points) < 1.5
    # the normalised image matches the template in shape (correlation on the grid)
    assert np.corrcoef(np.asarray(img.dataobj).ravel(), files["tpl_data"].ravel())[0, 1] > 0.95
    assert sorted(p.name for p in out_img.parent.iterdir()) == [out_json.name, out_img.name]  # no leftovers
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("datxai-normalize-")] == []  # work dir removed
    assert files["source"].read_bytes() == src_bytes  # input untouched


def test_divergence_fallback_and_error(files, tmp_path):
    out_img, out_json = tmp_path / "a.nii.gz", tmp_path / "a.json"
    info = run_normalize(files["noise"], files["template"], out_img, out_json, GRID, work_dir=tmp_path, **OPTIONS)
    assert info["diverged"] and info["fallback"] and info["matrix"] == info["initial_matrix"]
    assert out_img.is_file()
    b_img, b_json = tmp_path / "b.nii.gz", tmp_path / "b.json"
    with pytest.raises(Exception, match="diverged"):
        run_normalize(files["noise"], files["template"], b_img, b_json, GRID, work_dir=tmp_path,
                      on_divergence="error", **OPTIONS)
    assert not b_img.exists() and not b_json.exists()  # nothing half-written


def test_torch_batch_matches_the_nipype_workflow(files, tmp_path):
    """engine torch: the same JSON (keys, flags, fallback) and image as the nipype workflow, up to float32 rounding."""
    src_bytes = files["source"].read_bytes()
    subjects = ["sub-01", "sub-02"]
    sources = [files["source"], files["noise"]]
    ref = [run_normalize(src, files["template"], tmp_path / "ref" / f"{s}.nii.gz", tmp_path / "ref" / f"{s}.json",
                         GRID, work_dir=tmp_path, subject=s, **OPTIONS) for s, src in zip(subjects, sources)]
    out_imgs = [tmp_path / "bat" / f"{s}.nii.gz" for s in subjects]
    out_jsons = [tmp_path / "bat" / f"{s}.json" for s in subjects]
    infos = run_normalize_batch(sources, files["template"], out_imgs, out_jsons, GRID, subjects, device="cpu", **OPTIONS)
    points = GRID.coords_mm()[:, files["tpl_data"] > 0.5].T
    for a, b, img, js, subject in zip(infos, ref, out_imgs, out_jsons, subjects):
        assert json.loads(js.read_text()) == a and set(a) == set(b) and a["subject"] == subject
        assert a["flags"] == b["flags"] and a["fallback"] == b["fallback"] and a["diverged"] == b["diverged"]
        assert mean_displacement_mm(np.asarray(a["matrix"]), np.asarray(b["matrix"]), points) < 1e-3
        assert a["cost"] == pytest.approx(b["cost"], rel=1e-4)
        ours = np.asarray(nib.load(img).dataobj)
        theirs = np.asarray(nib.load(tmp_path / "ref" / f"{subject}.nii.gz").dataobj)
        assert np.abs(ours - theirs).max() < 1e-3 * np.abs(theirs).max()
    assert infos[1]["fallback"] and not infos[0]["diverged"]  # the noise image falls back, as in nipype
    assert files["source"].read_bytes() == src_bytes  # input untouched


def test_torch_batch_errors_name_the_subjects(files, tmp_path):
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(b"not a nifti")
    outs = [tmp_path / "o" / f"{i}.nii.gz" for i in range(3)]
    jsons = [tmp_path / "o" / f"{i}.json" for i in range(3)]
    with pytest.raises(InputError, match=r"(?s)2 of 3 source images.*sub-02: .*broken.nii.gz.*sub-03: .*missing"):
        run_normalize_batch([files["source"], broken, tmp_path / "missing.nii.gz"], files["template"], outs, jsons,
                            GRID, ["sub-01", "sub-02", "sub-03"], device="cpu", **OPTIONS)
    assert not (tmp_path / "o").exists()  # nothing written before every input was checked
    four_d = tmp_path / "four_d.nii.gz"
    save_nifti(np.ones((4, 4, 4, 2), np.float32), NATIVE, four_d)
    with pytest.raises(InputError, match=r"sub-02: .*four_d.nii.gz: expected a 3-D image, got shape \(4, 4, 4, 2\)"):
        run_normalize_batch([files["source"], four_d], files["template"], outs[:2], jsons[:2], GRID,
                            ["sub-01", "sub-02"], device="cpu", **OPTIONS)
    with pytest.raises(RuntimeError, match=r"(?s)1 of 2 registrations diverged.*sub-02"):
        run_normalize_batch([files["source"], files["noise"]], files["template"], outs[:2], jsons[:2], GRID,
                            ["sub-01", "sub-02"], device="cpu", on_divergence="error", **OPTIONS)
    assert not outs[1].exists() and not jsons[1].exists()
    with pytest.raises(ValueError, match="one of each per subject"):
        run_normalize_batch([files["source"]], files["template"], outs, jsons, GRID, ["sub-01"], device="cpu")
    assert normalize_engine({}) == ("nipype", "auto")
    assert normalize_engine({"engine": "torch", "device": "cpu"}) == ("torch", "cpu")
    with pytest.raises(ValueError, match="normalize.engine"):
        normalize_engine({"engine": "ants"})


def test_registration_table_and_errors():
    m = rigid_affine([0, 0, 0], [3.0, 4.0, 0.0], 1.0)
    recs = {"sub-01": {"matrix": m.tolist(), "cost": 0.1, "converged": True, "diverged": False, "flags": []},
            "sub-02": {"matrix": np.eye(4).tolist(), "estimated_matrix": (2 * np.eye(4)).tolist(), "diverged": True,
                       "flags": ["implausible_zoom"], "fallback": True}}
    t = registration_table(recs)
    assert list(t["subject"]) == ["sub-01", "sub-02"]
    assert t.loc[1, "zoom_x"] == pytest.approx(2.0) and t.loc[1, "flags"] == "implausible_zoom"
    pts = np.random.default_rng(0).normal(0, 30, (100, 3))
    err = registration_errors({"a": m}, {"a": np.eye(4)}, pts)
    assert err.loc[0, "mean_displacement_mm"] == pytest.approx(5.0)  # |(3, 4, 0)| for a pure translation


def test_pose_from_truth_forms():
    pose = rigid_affine([1, 2, 3], [4, 5, 6], 1.1)
    flat = {"rot_x_deg": 1, "rot_y_deg": 2, "rot_z_deg": 3, "trans_x_mm": 4, "trans_y_mm": 5, "trans_z_mm": 6,
            "head_scale": 1.1}
    for truth in ({"pose": pose.tolist()}, {"pose": {"matrix": pose.tolist()}}, flat, {"pose": flat}):
        np.testing.assert_allclose(pose_from_truth(truth), pose)
    with pytest.raises(InputError, match="pose"):
        pose_from_truth({"subject": "sub-1"}, source="x.json")


def test_montage_written(files, tmp_path):
    chosen = montage_subjects([f"s{i}" for i in range(10)], n=4, flagged=["s7"])
    assert chosen[0] == "s7" and len(chosen) == 4
    out = tmp_path / "m.png"
    normalize_montage(files["tpl_data"], [(s, files["tpl_data"]) for s in chosen], GRID, out, flagged=["s7"])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_normalize(files, tmp_path):
    from datxai.cli import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"grid: {{shape: {list(GRID.shape)}, voxel_mm: {GRID.voxel_mm}, center_mm: {list(GRID.center_mm)}}}\n"
                   "normalize: {smooth_fwhm_mm: 6.0, sampling_mm: [8.0, 5.0]}\n")
    rc = main(["normalize", str(files["source"]), "-t", str(files["template"]), "-o", str(tmp_path / "o"), "-c", str(cfg)])
    assert rc == 0
    assert (tmp_path / "o" / "src_space-MNI_spect.nii.gz").is_file() and (tmp_path / "o" / "src_affine.json").is_file()
