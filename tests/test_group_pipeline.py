"""File-level chain on a toy grid: model.pt + test set -> relevance maps -> heat -> clusters -> S2 -> figures
-> validation. A stand-in atlas (known boxes) replaces the Harvard-Oxford resampling to keep this fast."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from datxai.explain.maps import run_compute_relevance
from datxai.grid import Grid
from datxai.group.run import (
    run_companion,
    run_figures,
    run_find_clusters,
    run_group_relevance,
    run_validate_clusters,
)
from datxai.io import load_nifti, read_tsv, save_npy, write_tsv
from datxai.model import build_model, save_model

torch.set_num_threads(1)
GRID = Grid((10, 12, 9), 8.0, (0.0, -18.0, 11.0))
BOX = [[-20.0, 20.0], [-20.0, 20.0], [-8.0, 16.0]]
NAMES = ("Left_Putamen", "Right_Putamen", "Left_Caudate", "Right_Caudate", "Left_Insular_Cortex")


class ToyAtlas:
    """Boxes for putamen/caudate per side, an 'insula' region, a brain mask and a flat T1."""

    def __init__(self, grid):
        self.grid = grid
        self._p = {}
        for k, (base, side, sl) in enumerate([
            ("Putamen", "L", np.s_[3:4, 5:7, 4:6]), ("Putamen", "R", np.s_[6:7, 5:7, 4:6]),
            ("Caudate", "L", np.s_[4:5, 6:8, 5:6]), ("Caudate", "R", np.s_[5:6, 6:8, 5:6]),
        ]):
            m = np.zeros(grid.shape, np.float32)
            m[sl] = 0.9
            self._p[(base, side)] = m
        self.label_image = np.zeros(grid.shape, np.int16)
        self.label_image[0:3, 2:5, 1:4] = 5
        self.brain_mask = np.ones(grid.shape, bool)
        self.t1 = np.ones(grid.shape, np.float32)
        self.striatum_mask = sum(self._p.values()) > 0.5

    def prob(self, base, side=None):
        return self._p[(base, side)]


@pytest.fixture(autouse=True)
def _toy_region_names(monkeypatch):
    monkeypatch.setattr("datxai.atlas.region_names", lambda: NAMES)


def test_chain(tmp_path):
    rng = np.random.default_rng(4)
    n = 12
    subjects = [f"sub-{i:04d}" for i in range(1, n + 1)]
    y = np.array([0, 1] * (n // 2))
    x = rng.uniform(0.5, 1.5, (n,) + GRID.shape).astype(np.float32)
    x[y == 1, 3:4, 5:7, 4:6] *= 0.3  # lower ipsilateral putamen in 'reduced'
    x[y == 1, 0:3, 2:5, 1:4] *= 0.6  # and a lower 'insula'
    model = build_model(GRID.shape, conv_filters=2, fc_widths=(8, 4), seed=1)
    save_model(model, tmp_path / "model.pt", setting="full")
    save_npy(x, tmp_path / "test.npy")
    labels = np.array(["normal", "reduced"])[y]
    write_tsv(pd.DataFrame({"subject": subjects, "label": labels, "y": y}), tmp_path / "test.tsv")
    # the evaluated predictions: by construction 2 misclassified (one FN, one FP), the rest correct
    pred = labels.copy()
    pred[1], pred[2] = "normal", "reduced"
    write_tsv(pd.DataFrame({"subject": subjects, "label": labels, "predicted": pred}), tmp_path / "pred.tsv")

    atlas = ToyAtlas(GRID)
    rel_dir = tmp_path / "relevance"
    table = run_compute_relevance(tmp_path / "model.pt", tmp_path / "test.npy", tmp_path / "test.tsv",
                                  tmp_path / "pred.tsv", rel_dir, "full", GRID, BOX, batch_size=5, device="cpu")
    assert sorted(table.outcome.value_counts().items()) == [("FN", 1), ("FP", 1), ("TN", 5), ("TP", 5)]
    assert read_tsv(rel_dir / "relevance.tsv")["subject"].tolist() == subjects

    g = tmp_path / "group"
    run_group_relevance(rel_dir, GRID, g / "heat.nii.gz", g / "mean_tp.nii.gz", g / "mean_tn.nii.gz",
                        g / "group.json", "full")
    heat, _ = load_nifti(g / "heat.nii.gz")
    tp, _ = load_nifti(g / "mean_tp.nii.gz")
    tn, _ = load_nifti(g / "mean_tn.nii.gz")
    np.testing.assert_allclose(heat, tp - tn, atol=1e-6 * np.abs(heat).max())
    assert json.loads((g / "group.json").read_text())["n_tp"] == 5

    clusters = run_find_clusters(g / "heat.nii.gz", atlas, GRID, BOX, g / "clusters.nii.gz", g / "clusters.tsv",
                                 percentile=90, min_cluster_ml=0.0)
    lab, _ = load_nifti(g / "clusters.nii.gz", allow_zero=True)
    assert lab.max() == len(clusters)
    assert not lab[GRID.box_slices(BOX)].any()

    out, summary = run_companion(rel_dir, g / "mean_tn.nii.gz", g / "mean_tp.nii.gz", atlas, GRID,
                                 tmp_path / "put.tsv", tmp_path / "summary.tsv", tmp_path / "hist.png",
                                 tmp_path / "mis.png", images_npy=tmp_path / "test.npy", table_tsv=tmp_path / "test.tsv",
                                 setting="full", box_mm=BOX, margin_mm=0.0, hottest_ml=1.0)
    assert set(summary.classifier) == {"putamen_sign", "cnn"}
    # the putamen relevance, recomputed here from a map and its image by the S2 definition
    from datxai.group.companion import putamen_relevance, putamen_roi
    from datxai.preprocess.sbr import n_hottest

    first = out.iloc[0].subject
    rel0, _ = load_nifti(rel_dir / f"{first}_relevance.nii.gz")
    expected = putamen_relevance(rel0, x[0], putamen_roi(atlas, 0.0), n_hottest(1.0, GRID.voxel_ml))
    assert out.iloc[0].putamen_relevance == pytest.approx(expected, rel=1e-6)
    assert summary.set_index("classifier").loc["cnn", "accuracy"] == pytest.approx(10 / 12)
    assert summary.n_misclassified.iloc[0] == 2

    run_figures({"full": {"heat": g / "heat.nii.gz", "mean_tp": g / "mean_tp.nii.gz", "mean_tn": g / "mean_tn.nii.gz",
                          "json": g / "group.json"}}, {"full": g / "clusters.nii.gz"}, atlas, GRID, BOX, 90,
                tmp_path / "f1.png", tmp_path / "f2.png", tmp_path / "f3.png")
    assert all((tmp_path / f).stat().st_size > 1000 for f in ("f1.png", "f2.png", "f3.png", "hist.png", "mis.png"))

    truth = tmp_path / "sub-0002_truth.json"
    truth.write_text(json.dumps({"subject": "sub-0002", "planted": [
        {"region": "Insular_Cortex", "side": "L", "relation": "ipsi", "reduction": 0.4}]}))
    v = run_validate_clusters({"full": g / "clusters.tsv"}, [truth], tmp_path / "val.tsv")
    assert v.iloc[0].planted_region == "Insular_Cortex" and v.iloc[0].side == "I"
    assert set(v.hit) <= {"yes", "no", "spurious"}
