"""Per-subject files, the SBR table and figure, validation against a truth table, the quantify CLI."""

import json

import numpy as np
import pandas as pd
import pytest

from datxai.grid import Grid
from datxai.io import load_nifti, save_nifti
from datxai.preprocess.quality import SBR_COLUMNS, collect_sbr, plot_sbr, process_file, validate_sbr

GRID = Grid((9, 10, 7), 4.0)


class BlockAtlas:
    """Putamen/caudate blocks symmetric about x = 0; reference = everything else."""

    grid = GRID

    def __init__(self):
        self.p = {}
        for side, (ip, ic) in {"L": (1, 3), "R": (7, 5)}.items():
            for base, i, js in (("Putamen", ip, slice(3, 6)), ("Caudate", ic, slice(6, 8))):
                a = np.zeros(GRID.shape, np.float32)
                a[i, js, 2:5] = 1
                self.p[(base, side)] = a
        self.reference_mask = ~np.any([v > 0 for v in self.p.values()], axis=0)

    def prob(self, base, side=None):
        return self.p[(base, side)] if side else self.p[(base, "L")] + self.p[(base, "R")]


def image(rng, put_l=3.0, put_r=5.0):
    atlas = BlockAtlas()
    img = rng.uniform(9, 11, GRID.shape).astype(np.float32)  # reference ~10
    for (base, side), a in atlas.p.items():
        img[a > 0] = 10 * (1 + {"Putamen": {"L": put_l, "R": put_r}, "Caudate": {"L": 4.0, "R": 4.0}}[base][side])
    return atlas, img


def test_process_file_writes_scaled_mirrored_image_and_json(tmp_path, rng):
    atlas, img = image(rng, put_l=5.0, put_r=3.0)  # right lower: mirrored
    src = save_nifti(img, GRID.affine, tmp_path / "sub-0001_space-MNI_spect.nii.gz")
    rec = process_file(src, atlas, tmp_path / "out" / "scaled.nii.gz", tmp_path / "out" / "sub-0001_sbr.json",
                       "sub-0001", 75, 4.0, 0.2)
    data, aff = load_nifti(tmp_path / "out" / "scaled.nii.gz")
    np.testing.assert_allclose(aff, GRID.affine)
    ref = np.percentile(img[atlas.reference_mask].astype(np.float64), 75)
    np.testing.assert_allclose(data, img[::-1] / ref, rtol=1e-6)  # scaled and flipped on x
    saved = json.loads((tmp_path / "out" / "sub-0001_sbr.json").read_text())
    assert saved["subject"] == "sub-0001" and saved["mirrored"] == "yes" and saved["lower_putamen_side"] == "R"
    assert set(SBR_COLUMNS) <= set(saved)
    # the block values are uniform: SBR = 10 (1 + s) / ref - 1 exactly (float32 scaled image: rel 1e-6)
    assert saved["sbr_putamen_ipsi"] == pytest.approx(10 * 4 / ref - 1, rel=1e-6)
    assert rec == saved


def test_process_file_rejects_a_foreign_grid_and_writes_nothing(tmp_path, rng):
    atlas, img = image(rng)
    src = save_nifti(img, np.diag([2.0, 2, 2, 1]), tmp_path / "sub-0001.nii.gz")
    with pytest.raises(ValueError, match="sub-0001.nii.gz.*affine"):
        process_file(src, atlas, tmp_path / "o" / "s.nii.gz", tmp_path / "o" / "s.json", "sub-0001")
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


def test_collect_and_plot(tmp_path, rng):
    paths = []
    for i, s in enumerate(["sub-0002", "sub-0001"]):
        rec = dict(zip(SBR_COLUMNS, [s, 1.0 + i, 2.0, 1.5, 2.5, "no", 10.0, "L"]))
        p = tmp_path / f"{s}.json"
        p.write_text(json.dumps(rec))
        paths.append(p)
    part = pd.DataFrame({"subject": ["sub-0001", "sub-0002"], "label": ["reduced", "normal"]})
    t = collect_sbr(paths, part)
    assert list(t["subject"]) == ["sub-0002", "sub-0001"] and list(t["label"]) == ["normal", "reduced"]
    assert list(t.columns[: len(SBR_COLUMNS)]) == SBR_COLUMNS
    plot_sbr(t, tmp_path / "fig.png")
    assert (tmp_path / "fig.png").read_bytes()[:4] == b"\x89PNG"
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="bad.json"):
        collect_sbr([tmp_path / "bad.json"])


def test_validate_sbr_against_truth(rng):
    n = 40
    true_l, true_r = rng.uniform(0.5, 3.5, n), rng.uniform(0.5, 3.5, n)
    truth = pd.DataFrame({"subject": [f"sub-{i:04d}" for i in range(n)], "sbr_putamen_L": true_l,
                          "sbr_putamen_R": true_r, "affected_side": np.where(true_l <= true_r, "L", "R"),
                          "true_class": ["reduced"] * 20 + ["normal"] * 20, "label": "normal"})
    meas_l = 0.7 * true_l + rng.normal(0, 0.05, n)
    meas_r = 0.7 * true_r + rng.normal(0, 0.05, n)
    lower = np.where(meas_r < meas_l, "R", "L")
    meas = pd.DataFrame({"subject": truth["subject"], "sbr_putamen_L": meas_l, "sbr_putamen_R": meas_r,
                         "sbr_putamen_ipsi": np.minimum(meas_l, meas_r), "lower_putamen_side": lower,
                         "label": "normal"})
    v = validate_sbr(meas, truth).set_index("measure")
    r_ref = np.corrcoef(np.r_[meas_l, meas_r], np.r_[true_l, true_r])[0, 1]  # independent Pearson r
    assert v.loc["pearson_r_putamen", "value"] == pytest.approx(r_ref, rel=1e-10)
    assert v.loc["pearson_r_putamen", "n"] == 2 * n
    expected = np.mean(lower[:20] == truth["affected_side"].to_numpy()[:20])
    assert v.loc["fraction_side_correct", "value"] == pytest.approx(expected)
    assert v.loc["fraction_side_correct", "n"] == 20
    assert v.loc["mean_bias_putamen", "value"] == pytest.approx(np.mean(np.r_[meas_l - true_l, meas_r - true_r]))
    with pytest.raises(ValueError, match="affected_side"):
        validate_sbr(meas, truth.drop(columns="affected_side"))


def test_quantify_cli(tmp_path, rng):
    """End to end on the packaged atlas (8 mm grid, grid read from the image)."""
    from datxai.atlas import atlas_on_grid
    from datxai.cli import main

    grid = Grid((18, 23, 19), 8.0)
    atlas = atlas_on_grid(grid)
    img = np.where(atlas.brain_mask, 100.0, 0.0).astype(np.float32)
    img[atlas.prob("Putamen", "R") >= 0.5] = 250.0
    img[atlas.prob("Putamen", "L") >= 0.5] = 300.0
    img[atlas.prob("Caudate") >= 0.5] = 320.0
    save_nifti(img, grid.affine, tmp_path / "sub-0007_space-MNI_spect.nii.gz")
    assert main(["quantify", str(tmp_path / "sub-0007_space-MNI_spect.nii.gz"), "--out-dir", str(tmp_path / "q")]) == 0
    t = pd.read_csv(tmp_path / "q" / "sbr.tsv", sep="\t")
    assert t.loc[0, "mirrored"] == "yes" and t.loc[0, "lower_putamen_side"] == "R"
    assert t.loc[0, "reference_p75"] == pytest.approx(100.0)
    # n hottest (4 ml = 8 voxels of 0.512 ml) may exceed the core; the ROI mean is then < the core value
    assert 0 < t.loc[0, "sbr_putamen_ipsi"] <= 1.5 + 1e-6 and t.loc[0, "sbr_putamen_contra"] <= 2.0 + 1e-6
    assert t.loc[0, "sbr_putamen_ipsi"] < t.loc[0, "sbr_putamen_contra"]
    assert (tmp_path / "q" / "sub-0007_space-MNI_desc-scaled_spect.nii.gz").is_file()
