"""Evaluation: Wilson CIs against Newcombe (1998), metrics against hand-counted confusion tables."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from datxai.model import build_model
from datxai.model.evaluate import classification_metrics, confusion_counts, predict, predictions_table, \
    table1, wilson_ci
from datxai.model.plots import plot_learning_curves, plot_table1

torch.set_num_threads(1)


@pytest.mark.parametrize("k, n, low, high", [
    # Newcombe RG (1998) Stat Med 17:857-872, Table II, method 3 (Wilson score, no continuity correction)
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0000, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_wilson_ci_matches_newcombe_1998(k, n, low, high):
    lo, hi = wilson_ci(k, n)
    # the paper prints 4 decimals: agreement to half a unit in the last place
    assert lo == pytest.approx(low, abs=5e-5)
    assert hi == pytest.approx(high, abs=5e-5)


def test_wilson_ci_matches_statsmodels_and_edge_cases():
    from statsmodels.stats.proportion import proportion_confint

    for k, n in [(0, 7), (3, 7), (7, 7), (148, 149), (451, 876)]:
        for conf in (0.9, 0.95, 0.99):
            ref = proportion_confint(k, n, alpha=1 - conf, method="wilson")
            assert np.allclose(wilson_ci(k, n, conf), ref, atol=1e-12)  # same closed form: rounding only
    assert all(math.isnan(v) for v in wilson_ci(0, 0))
    with pytest.raises(ValueError, match=r"wilson_ci: k must be in \[0, 4\]; got 5"):
        wilson_ci(5, 4)
    with pytest.raises(ValueError, match="wilson_ci: n must be >= 0; got -1"):
        wilson_ci(0, -1)


def test_metrics_from_hand_counted_confusion_table():
    # 10 cases, positive = reduced (1):  TP = 3 (0,1,2), FN = 1 (3), TN = 4 (4..7), FP = 2 (8, 9)
    y_true = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    y_pred = np.array([1, 1, 1, 0, 0, 0, 0, 0, 1, 1])
    counts = confusion_counts(y_true, y_pred)
    assert counts == {"tp": 3, "tn": 4, "fp": 2, "fn": 1}
    m = classification_metrics(**counts)
    assert m["n"] == 10
    assert m["accuracy"] == pytest.approx(7 / 10)
    assert m["sensitivity"] == pytest.approx(3 / 4)
    assert m["specificity"] == pytest.approx(4 / 6)
    assert m["ppv"] == pytest.approx(3 / 5)
    assert m["npv"] == pytest.approx(4 / 5)
    assert (m["sensitivity_ci_low"], m["sensitivity_ci_high"]) == wilson_ci(3, 4)
    # undefined PPV when nothing is called reduced
    none = classification_metrics(tp=0, tn=5, fp=0, fn=2)
    assert math.isnan(none["ppv"]) and none["npv"] == pytest.approx(5 / 7)


def test_predictions_table_and_table1(tmp_path):
    y_true = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    y_pred = np.array([1, 1, 1, 0, 0, 0, 0, 0, 1, 1])
    p = np.where(y_pred == 1, 0.8, 0.3)
    subjects = [f"sub-{i:04d}" for i in range(10)]
    df = predictions_table(subjects, y_true, y_pred, p)
    assert list(df.columns) == ["subject", "label", "predicted", "p_reduced", "correct", "outcome"]
    assert list(df["outcome"]) == ["TP", "TP", "TP", "FN", "TN", "TN", "TN", "TN", "FP", "FP"]
    assert list(df["correct"][:4]) == ["yes", "yes", "yes", "no"]
    t = table1({"full": df, "striatum": df.assign(predicted=df["label"])})
    assert list(t["setting"]) == ["full", "striatum"]
    assert t.loc[0, ["tp", "tn", "fp", "fn"]].tolist() == [3, 4, 2, 1]
    assert t.loc[1, "accuracy"] == 1.0 and t.loc[1, "accuracy_ci_high"] == 1.0
    assert t.loc[1, "accuracy_ci_low"] == pytest.approx(wilson_ci(10, 10)[0])
    assert t.loc[0, "ci_method"].startswith("Wilson")
    plot_table1(t, tmp_path / "t1.png")
    hist = pd.DataFrame({"epoch": [1, 2], "train_loss": [0.7, 0.5], "train_accuracy": [0.5, 0.8],
                         "val_loss": [0.7, 0.6], "val_accuracy": [0.5, 0.7], "seconds": [1.0, 1.0]})
    plot_learning_curves({"full": hist, "striatum": hist}, tmp_path / "lc.png")
    for name in ("t1.png", "lc.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_predict_agrees_with_softmax_of_the_model():
    model = build_model((7, 8, 9), seed=2).eval()
    x = np.random.default_rng(0).normal(size=(5, 7, 8, 9)).astype(np.float32)
    pred, p = predict(model, x, batch_size=2)
    with torch.no_grad():
        logits = model(torch.from_numpy(x).unsqueeze(1))
    assert np.array_equal(pred, logits.argmax(1).numpy())
    assert np.allclose(p, torch.softmax(logits, 1)[:, 1].numpy(), atol=1e-6)  # float32 softmax
    assert np.array_equal(pred, (p > 0.5).astype(int))


def test_repeats_tables_by_hand():
    """Two repeats of one setting with known confusion counts: per-repeat Table 1 and mean / SD / min / max."""
    import pandas as pd

    from datxai.model.evaluate import repeats_tables

    def preds(tp, tn, fp, fn):
        label = ["reduced"] * (tp + fn) + ["normal"] * (tn + fp)
        predicted = ["reduced"] * tp + ["normal"] * fn + ["normal"] * tn + ["reduced"] * fp
        return pd.DataFrame({"subject": [f"sub-{i:04d}" for i in range(len(label))], "label": label,
                             "predicted": predicted})

    per, summary = repeats_tables({"full": [preds(8, 9, 1, 2), preds(10, 6, 4, 0)]})
    assert list(per["repeat"]) == [0, 1] and list(per["tp"]) == [8, 10] and list(per["fp"]) == [1, 4]
    assert per["accuracy"].tolist() == pytest.approx([17 / 20, 16 / 20])
    row = summary.iloc[0]
    assert row.setting == "full" and row.n_repeats == 2
    assert row.accuracy_mean == pytest.approx(0.825) and row.accuracy_sd == pytest.approx(0.05 / np.sqrt(2))
    assert (row.sensitivity_min, row.sensitivity_max) == pytest.approx((0.8, 1.0))  # 8/10 and 10/10
    assert (row.specificity_min, row.specificity_max) == pytest.approx((0.6, 0.9))  # 6/10 and 9/10
    _, one = repeats_tables({"full": [preds(8, 9, 1, 2)]})
    assert np.isnan(one.iloc[0].accuracy_sd)  # no spread from a single repeat


def test_repeat_seeds():
    from datxai.config import derive_seed
    from datxai.model.train import repeat_seed

    assert repeat_seed(20211, "full", 0) == derive_seed(20211, "train", "full")  # repeat 0 = the study's model
    seeds = {repeat_seed(20211, s, r) for s in ("full", "striatum", "nostriatum") for r in range(5)}
    assert len(seeds) == 15
    with pytest.raises(ValueError, match="repeat"):
        repeat_seed(20211, "full", -1)
