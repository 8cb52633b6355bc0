"""Youden cut-off on a hand example, Wilson CIs against known values, the train-only cut-off."""

import numpy as np
import pandas as pd
import pytest

from datxai.stats.comparator import binary_metrics, sbr_comparator, wilson_ci, youden_cutoff


def test_youden_hand_example():
    # values 1..6, positive (lower = reduced) at 1, 2, 4. Cut-off 2.5: sens 2/3, spec 3/3;
    # 4.5: sens 3/3, spec 2/3; both J = 2/3, ties go to the lowest cut-off; 3.5 gives J = 1/3.
    cut, j = youden_cutoff([1, 2, 3, 4, 5, 6], [True, True, False, True, False, False])
    assert cut == 2.5
    assert j == pytest.approx(2 / 3)
    # perfectly separated: cut-off between the classes, J = 1
    assert youden_cutoff([3.0, 1.0, 2.0, 4.0], [False, True, True, False]) == (2.5, 1.0)


def test_youden_needs_both_classes():
    with pytest.raises(ValueError, match="both classes"):
        youden_cutoff([1, 2, 3], [True, True, True])


def test_wilson_known_values():
    from statsmodels.stats.proportion import proportion_confint

    # 8 / 10: Wilson 95 % interval 0.4902-0.9433 (computed by hand from Wilson 1927, z = 1.95996)
    assert wilson_ci(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    for k, n in ((0, 15), (15, 15), (37, 120)):
        assert wilson_ci(k, n) == pytest.approx(proportion_confint(k, n, method="wilson"), abs=1e-12)


def test_binary_metrics_hand():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], bool)
    p = np.array([1, 1, 1, 0, 1, 0, 0, 0, 0, 0], bool)
    m = binary_metrics(y, p)
    assert (m["tp"], m["fn"], m["fp"], m["tn"]) == (3, 1, 1, 5)
    assert m["accuracy"] == 0.8 and m["sensitivity"] == 0.75 and m["specificity"] == pytest.approx(5 / 6)
    assert m["ppv"] == 0.75 and m["npv"] == pytest.approx(5 / 6)
    assert m["accuracy_ci_low"] < 0.8 < m["accuracy_ci_high"]


def test_cutoff_from_training_only(rng):
    n = 40
    sbr = np.r_[rng.uniform(1.0, 2.0, n // 2), rng.uniform(2.2, 3.5, n // 2)]
    df = pd.DataFrame({"subject": [f"s{i}" for i in range(n)], "sbr_putamen_ipsi": sbr,
                       "label": ["reduced"] * (n // 2) + ["normal"] * (n // 2),
                       "subset": ["train" if i % 4 else "test" for i in range(n)]})
    out = sbr_comparator(df)
    assert list(out["subset"]) == ["train", "test"]
    assert out["cutoff"].nunique() == 1
    assert out.iloc[0]["accuracy"] == 1.0  # separable training set
    # changing test values cannot move the cut-off
    df2 = df.copy()
    df2.loc[df2["subset"] == "test", "sbr_putamen_ipsi"] = 0.1
    out2 = sbr_comparator(df2)
    assert out2.iloc[0]["cutoff"] == out.iloc[0]["cutoff"]
    assert out2.iloc[1]["specificity"] == 0.0  # all test subjects now called reduced
