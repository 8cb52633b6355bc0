"""Per-setting relevance maps: NIfTI on the full grid, striatum crop placed back, table columns."""

import numpy as np
import pandas as pd
import pytest
import torch

from datxai.dataset import box_mask, setting_shape
from datxai.explain.lrp import LRPConfig
from datxai.explain.maps import TABLE_COLUMNS, explain_setting, match_predictions
from datxai.grid import Grid
from datxai.io import InputError, load_nifti
from datxai.model import build_model

torch.set_num_threads(1)
GRID = Grid((9, 10, 8), 6.0, (0.0, -18.0, 11.0))
BOX = [[-12.0, 12.0], [-30.0, 0.0], [0.0, 20.0]]


@pytest.mark.parametrize("setting", ["striatum", "nostriatum"])
def test_explain_setting(tmp_path, setting):
    shape = setting_shape(setting, GRID, BOX)
    model = build_model(shape, conv_filters=2, fc_widths=(8, 4), seed=5)
    rng = np.random.default_rng(0)
    data = rng.uniform(0, 2, (3,) + shape).astype(np.float32)
    with torch.no_grad():
        pred = model(torch.from_numpy(data).unsqueeze(1)).argmax(1).numpy()
    predicted = [("normal", "reduced")[p] for p in pred]
    subjects, labels = ["sub-0001", "sub-0002", "sub-0003"], ["normal", "reduced", "reduced"]
    table = explain_setting(model, data, subjects, labels, predicted, setting, GRID, BOX, LRPConfig(), tmp_path,
                            batch_size=2, device="cpu")
    assert list(table.columns) == list(TABLE_COLUMNS)
    assert (table["argmax_agrees"] == "yes").all()
    # (conservation is exact only where alpha-beta units see both signs; an untrained 2-filter net
    # with sparse activations does not, so only finiteness is checked here; see test_explain_lrp)
    assert np.isfinite(table["conservation"]).all() and (table["logit"] == table["logit"]).all()
    inside = box_mask(GRID, BOX)
    for s in subjects:
        rel, aff = load_nifti(tmp_path / f"{s}_relevance.nii.gz")
        assert rel.shape == GRID.shape
        np.testing.assert_allclose(aff, GRID.affine)
        if setting == "striatum":
            assert not rel[~inside].any() and rel[inside].any()  # crop placed back into the full grid
        row = table.set_index("subject").loc[s]
        assert rel.sum(dtype=np.float64) == pytest.approx(row.relevance_sum, rel=1e-5)


def test_match_predictions_errors():
    pred = pd.DataFrame({"subject": ["sub-0001", "sub-0002"], "label": ["normal", "reduced"],
                         "predicted": ["normal", "normal"]})
    assert match_predictions(["sub-0002", "sub-0001"], ["reduced", "normal"], pred) == ["normal", "normal"]
    with pytest.raises(InputError, match="no prediction for test subject"):
        match_predictions(["sub-0003"], ["normal"], pred, "x.tsv")
    with pytest.raises(InputError, match="label"):
        match_predictions(["sub-0001"], ["reduced"], pred, "x.tsv")


def test_target_reduced_explains_the_reduced_logit_in_every_case(tmp_path):
    """explain.target: reduced -> every map starts from logit 1 ('reduced'), whatever the prediction; the map of a
    case predicted 'reduced' is the same as with target: predicted; argmax_agrees still compares with the prediction."""
    from datxai.explain.lrp import explain_array

    shape = setting_shape("full", GRID, BOX)
    model = build_model(shape, conv_filters=2, fc_widths=(8, 4), seed=3)
    rng = np.random.default_rng(1)
    data = rng.uniform(0, 2, (4,) + shape).astype(np.float32)
    predicted = ["normal", "reduced", "normal", "reduced"]  # forced, whatever the net's arg-max
    subjects, labels = [f"sub-000{i}" for i in range(1, 5)], ["normal", "reduced", "reduced", "normal"]
    tables = {t: explain_setting(model, data, subjects, labels, predicted, "full", GRID, BOX, LRPConfig(),
                                 tmp_path / t, batch_size=3, device="cpu", target=t) for t in ("predicted", "reduced")}
    assert list(tables["reduced"]["explained"]) == ["reduced"] * 4
    assert list(tables["predicted"]["explained"]) == predicted
    same = np.array(predicted) == "reduced"  # the logit column (of the rules' forward pass) is the reduced one there
    np.testing.assert_allclose(tables["reduced"]["logit"][same], tables["predicted"]["logit"][same], rtol=1e-6)
    assert not np.allclose(tables["reduced"]["logit"][~same], tables["predicted"]["logit"][~same])
    cases = {c.index: c for c in explain_array(model, data, LRPConfig(), device="cpu", targets=np.ones(4, int))}
    ref = {k: c.relevance for k, c in cases.items()}
    for k, s in enumerate(subjects):
        red, _ = load_nifti(tmp_path / "reduced" / f"{s}_relevance.nii.gz")
        np.testing.assert_allclose(red, ref[k], rtol=0, atol=1e-5 * np.abs(ref[k]).max())  # float32, other batches
        if predicted[k] == "reduced":
            pre, _ = load_nifti(tmp_path / "predicted" / f"{s}_relevance.nii.gz")
            np.testing.assert_array_equal(red, pre)
    # arg-max of the logits of LRP's own forward pass (biases out: zero_params) against the evaluated class
    agrees = ["yes" if np.argmax(cases[k].logits) == ("normal", "reduced").index(predicted[k]) else "no"
              for k in range(4)]
    assert list(tables["reduced"]["argmax_agrees"]) == agrees == list(tables["predicted"]["argmax_agrees"])
    with pytest.raises(ValueError, match=r"explain.target must be one of \['predicted', 'reduced', 'margin'\]; got "):
        explain_setting(model, data, subjects, labels, predicted, "full", GRID, BOX, LRPConfig(), tmp_path / "x",
                        device="cpu", target="normal")


def test_target_margin_explains_the_log_odds(tmp_path):
    """explain.target: margin -> every map explains logit[reduced] - logit[normal] of the net (its forward pass in
    float64 as the reference, output biases included); argmax_agrees is the sign of that margin
    against the prediction."""
    shape = setting_shape("full", GRID, BOX)
    model = build_model(shape, conv_filters=4, fc_widths=(8, 4), seed=11)
    model.eval()  # (dropout off, as in LRP's pass)
    with torch.no_grad():
        model.classifier.out.bias.copy_(torch.tensor([0.05, -0.02]))
    rng = np.random.default_rng(2)
    data = rng.uniform(0, 2, (4,) + shape).astype(np.float32)
    with torch.no_grad():
        logits = model.double()(torch.from_numpy(data).double().unsqueeze(1)).numpy()
    model.float()
    margin = logits[:, 1] - logits[:, 0]
    predicted = ["reduced", "reduced", "normal", "normal"]
    subjects, labels = [f"sub-000{i}" for i in range(1, 5)], ["normal", "reduced", "reduced", "normal"]
    table = explain_setting(model, data, subjects, labels, predicted, "full", GRID, BOX, LRPConfig(), tmp_path,
                            batch_size=3, device="cpu", target="margin")
    assert list(table["explained"]) == ["reduced-normal"] * 4
    np.testing.assert_allclose(table["logit"], margin, rtol=1e-5, atol=1e-6)
    decided = np.where(margin > 0, "reduced", "normal")
    assert list(table["argmax_agrees"]) == ["yes" if d == p else "no" for d, p in zip(decided, predicted)]
    assert model.classifier.out.out_features == 2
