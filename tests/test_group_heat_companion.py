"""Group means / heat, S2 putamen relevance and its sign classifier, figure smoke tests."""

import numpy as np
import pandas as pd
import pytest

from datxai.grid import Grid
from datxai.group.companion import inconsistent_maps, putamen_relevance, sign_classification
from datxai.group.heat import group_maps, mean_map

SHAPE = (7, 8, 9)


def _table():
    return pd.DataFrame({
        "subject": [f"sub-{i:04d}" for i in range(1, 9)],
        "label": ["reduced"] * 4 + ["normal"] * 4,
        "predicted": ["reduced", "reduced", "reduced", "normal", "normal", "normal", "normal", "reduced"],
        "outcome": ["TP", "TP", "TP", "FN", "TN", "TN", "TN", "FP"],
        "putamen_relevance": [0.5, 0.2, -0.1, 0.3, -0.4, -0.2, 0.1, 0.2],
    })


def test_group_means_and_heat():
    rng = np.random.default_rng(0)
    table = _table()
    maps = {s: rng.normal(size=SHAPE).astype(np.float32) for s in table.subject}
    g = group_maps(table, maps.__getitem__, "full")
    tp = np.mean([maps[s] for s in table.subject[table.outcome == "TP"]], axis=0)
    tn = np.mean([maps[s] for s in table.subject[table.outcome == "TN"]], axis=0)
    # float32 inputs averaged in float64 then stored as float32: ~1e-7 relative
    np.testing.assert_allclose(g["mean_tp"], tp, atol=1e-6)
    np.testing.assert_allclose(g["mean_tn"], tn, atol=1e-6)
    np.testing.assert_allclose(g["heat"], tp - tn, atol=2e-6)
    assert (g["n_tp"], g["n_tn"]) == (3, 3)
    assert g["basis_tp"].startswith("correctly classified")
    # no TP case: the reduced mean falls back to all reduced test cases (FN here), and says so
    no_tp = table[table.outcome != "TP"]
    g2 = group_maps(no_tp, maps.__getitem__, "nostriatum")
    fn = np.mean([maps[s] for s in no_tp.subject[no_tp.outcome == "FN"]], axis=0)
    np.testing.assert_allclose(g2["mean_tp"], fn, atol=1e-6)
    assert "no TP case" in g2["basis_tp"] and g2["basis_tn"].startswith("correctly classified")
    # no reduced case at all: undefined
    with pytest.raises(ValueError, match="no test case of the class of TP"):
        group_maps(table[~table.outcome.isin(["TP", "FN"])], maps.__getitem__, "nostriatum")
    with pytest.raises(ValueError, match="shape"):
        mean_map(["a", "b"], {"a": np.zeros(SHAPE), "b": np.zeros((2, 2, 2))}.__getitem__)


def test_putamen_relevance_hottest_voxels():
    roi = np.zeros(SHAPE, bool)
    roi[1:3, 2:4, 3:5] = True  # 8 voxels
    image = np.zeros(SHAPE)
    rel = np.full(SHAPE, 100.0)  # outside the ROI: must not count
    vals_img = np.arange(8, dtype=float)  # image ranks inside the ROI
    vals_rel = np.array([-8, -7, -6, -5, 1, 2, 3, 4], float)
    image[roi], rel[roi] = vals_img, vals_rel
    # the 3 hottest image voxels carry relevance 2, 3, 4
    assert putamen_relevance(rel, image, roi, 3) == pytest.approx(3.0)
    # reversed image ranking -> the 3 lowest-index relevance values
    image[roi] = vals_img[::-1]
    assert putamen_relevance(rel, image, roi, 3) == pytest.approx(-7.0)
    assert putamen_relevance(rel, image, roi, 2, select_by="relevance") == pytest.approx(3.5)
    assert putamen_relevance(rel, image, roi, 50) == pytest.approx(vals_rel.mean())  # n > ROI: all voxels


def test_sign_classifier_and_inconsistent():
    t = _table()
    out = sign_classification(t)
    s = out["putamen_sign"]  # sign > 0 = reduced: reduced 0.5, 0.2, -0.1, 0.3 ; normal -0.4, -0.2, 0.1, 0.2
    assert (s["tp"], s["fn"], s["tn"], s["fp"]) == (3, 1, 2, 2)
    assert s["accuracy"] == pytest.approx(5 / 8) and s["sensitivity"] == pytest.approx(3 / 4)
    c = out["cnn"]
    assert (c["tp"], c["fn"], c["tn"], c["fp"]) == (3, 1, 3, 1)
    mis = inconsistent_maps(t)
    # FN with positive relevance (sign of its true class 'reduced') and FP with positive (not inconsistent)
    assert mis.set_index("subject").inconsistent.to_dict() == {"sub-0004": "yes", "sub-0008": "no"}


def test_figures_smoke(tmp_path):
    from datxai.group import companion, figures

    grid = Grid(SHAPE, 6.0)
    rng = np.random.default_rng(2)
    g = {"mean_tp": rng.normal(size=SHAPE), "mean_tn": rng.normal(size=SHAPE), "n_tp": 3, "n_tn": 4}
    g["heat"] = g["mean_tp"] - g["mean_tn"]
    figures.plot_group_maps({"full": g, "nostriatum": g}, grid, 10.0, tmp_path / "f1.png")
    figures.plot_heat_striatum({"full": g["heat"]}, grid, 10.0, tmp_path / "f2.png", t1=np.ones(SHAPE))
    cl = (g["heat"] > 1).astype(int)
    figures.plot_thresholded_heat({"full": g["heat"]}, {"full": cl}, {"full": 1.0}, grid, np.ones(SHAPE),
                                  [[-10, 10], [-30, 0], [0, 20]], tmp_path / "f3.png", z_list_mm=[5.0, 20.0])
    companion.plot_histogram(_table(), tmp_path / "hist.png")
    companion.plot_misclassified({"sub-0004": g["heat"]}, {"sub-0004": "FN"}, g["mean_tn"], g["mean_tp"], grid,
                                 10.0, tmp_path / "mis.png", putamen={"sub-0004": 0.3})
    for name in ("f1", "f2", "f3", "hist", "mis"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
