"""Case-level uncertainty over training repeats, against hand-computed tiny cases.

3 repeats x 4 test cases with P(reduced) chosen as binary fractions, so means, SDs and ranges are exact:

    case      label    repeat 0  1      2      mean   sample SD            range  repeat 0   ensemble
    sub-0001  reduced  0.875  0.875  0.875   0.875  0                    0      right      right
    sub-0002  normal   0.25   0.5    0.75    0.5    0.25                 0.5    right      right (0.5 ties to normal)
    sub-0003  reduced  0.375  0.625  0.875   0.625  0.25                 0.5    wrong (FN) right
    sub-0004  normal   0.75   0.125  0.125   1/3    5 sqrt(3) / 24       0.625  wrong (FP) right
                                                    (= 0.360844)
"""

import math

import numpy as np
import pandas as pd
import pytest

from datxai.intervals import wilson_ci
from datxai.io import InputError
from datxai.model.uncertainty import (CASE_COLUMNS, check_uncertainty_params, case_uncertainty,
                                      collect_uncertainty, uncertainty_summary, uncertainty_tables)

SUBJECTS = ["sub-0001", "sub-0002", "sub-0003", "sub-0004"]
LABELS = ["reduced", "normal", "reduced", "normal"]
P = [[0.875, 0.25, 0.375, 0.75],   # repeat 0
     [0.875, 0.5, 0.625, 0.125],
     [0.875, 0.75, 0.875, 0.125]]


def table(p, subjects=SUBJECTS, labels=LABELS):
    """A predictions table as evaluate_cnn writes it (predicted = P(reduced) > 0.5)."""
    return pd.DataFrame({"subject": subjects, "label": labels,
                         "predicted": ["reduced" if v > 0.5 else "normal" for v in p], "p_reduced": p})


def repeats():
    return [table(p) for p in P]


def test_case_statistics_by_hand():
    cases = case_uncertainty(repeats(), "full", measure="sd", threshold=0.1)
    assert list(cases.columns) == list(CASE_COLUMNS) and list(cases["subject"]) == SUBJECTS
    assert set(cases["setting"]) == {"full"} and set(cases["n_repeats"]) == {3}
    np.testing.assert_allclose(cases["p_reduced_mean"], [0.875, 0.5, 0.625, 1 / 3], rtol=0, atol=1e-15)
    np.testing.assert_allclose(cases["p_reduced_sd"], [0, 0.25, 0.25, 5 * math.sqrt(3) / 24], rtol=0, atol=1e-15)
    np.testing.assert_allclose(cases["p_reduced_range"], [0, 0.5, 0.5, 0.625], rtol=0, atol=0)
    np.testing.assert_allclose(cases["p_reduced_min"], [0.875, 0.25, 0.375, 0.125])
    np.testing.assert_allclose(cases["p_reduced_max"], [0.875, 0.75, 0.875, 0.75])
    assert list(cases["spread"]) == list(cases["p_reduced_sd"])
    assert list(cases["votes_reduced"]) == [3, 1, 2, 1]
    assert list(cases["predicted_mean"]) == ["reduced", "normal", "reduced", "normal"]
    assert list(cases["correct_mean"]) == ["yes"] * 4
    assert list(cases["predicted_repeat0"]) == ["reduced", "normal", "normal", "reduced"]
    assert list(cases["correct_repeat0"]) == ["yes", "yes", "no", "no"]
    assert list(cases["p_reduced_repeat0"]) == P[0]
    assert list(cases["flagged"]) == ["no", "yes", "yes", "yes"]


@pytest.mark.parametrize("measure, threshold, flagged", [
    ("sd", 0.1, ["no", "yes", "yes", "yes"]),
    ("sd", 0.25, ["no", "no", "no", "yes"]),     # exceeds: an SD equal to the threshold is not flagged
    ("sd", 0.0, ["no", "yes", "yes", "yes"]),    # any spread at all
    ("sd", 0.4, ["no", "no", "no", "no"]),
    ("range", 0.4, ["no", "yes", "yes", "yes"]),
    ("range", 0.5, ["no", "no", "no", "yes"]),
    ("range", 1.0, ["no", "no", "no", "no"]),    # a range never exceeds 1
])
def test_flagged_by_measure_and_threshold(measure, threshold, flagged):
    cases = case_uncertainty(repeats(), "full", measure=measure, threshold=threshold)
    assert list(cases["flagged"]) == flagged
    assert list(cases["spread"]) == list(cases[f"p_reduced_{measure}"])


def test_summary_when_the_flagged_cases_hold_every_error():
    cases = case_uncertainty(repeats(), "full", "sd", 0.1)
    (row,) = uncertainty_summary(cases, "sd", 0.1).itertuples()
    assert (row.setting, row.measure, row.threshold, row.n_repeats) == ("full", "sd", 0.1, 3)
    assert (row.n_cases, row.n_flagged, row.n_unflagged) == (4, 3, 1)
    assert row.flagged_share == 0.75
    assert (row.flagged_share_ci_low, row.flagged_share_ci_high) == wilson_ci(3, 4)
    assert (row.n_correct_mean, row.accuracy_mean) == (4, 1.0)
    assert (row.n_correct_mean_unflagged, row.accuracy_mean_unflagged) == (1, 1.0)
    assert (row.n_correct_repeat0, row.accuracy_repeat0) == (2, 0.5)
    assert (row.accuracy_repeat0_ci_low, row.accuracy_repeat0_ci_high) == wilson_ci(2, 4)
    assert (row.n_correct_repeat0_unflagged, row.accuracy_repeat0_unflagged) == (1, 1.0)
    assert (row.errors_repeat0, row.errors_repeat0_caught) == (2, 2)
    assert row.errors_repeat0_caught_share == 1.0 and row.errors_repeat0_caught_share_ci_high == 1.0
    assert row.errors_repeat0_caught_share_ci_low == pytest.approx(wilson_ci(2, 2)[0])
    assert row.ci_method == "Wilson score, 95 %"


def test_summary_with_a_tighter_flag():
    cases = case_uncertainty(repeats(), "full", "sd", 0.25)  # only sub-0004 flagged
    (row,) = uncertainty_summary(cases, "sd", 0.25, confidence=0.9).itertuples()
    assert (row.n_flagged, row.n_unflagged, row.flagged_share) == (1, 3, 0.25)
    assert (row.accuracy_mean_unflagged, row.accuracy_repeat0_unflagged) == (1.0, pytest.approx(2 / 3))
    assert (row.errors_repeat0, row.errors_repeat0_caught, row.errors_repeat0_caught_share) == (2, 1, 0.5)
    assert (row.errors_repeat0_caught_share_ci_low, row.errors_repeat0_caught_share_ci_high) == wilson_ci(1, 2, 0.9)
    assert row.ci_method == "Wilson score, 90 %"


def test_empty_denominators_give_nan():
    """No errors of repeat 0: the caught share is undefined; everything flagged: no unflagged accuracy."""
    right = [table([0.875, 0.125, 0.625, 0.375]), table([0.625, 0.375, 0.875, 0.125])]
    cases = case_uncertainty(right, "striatum", "range", 0.0)
    (row,) = uncertainty_summary(cases, "range", 0.0).itertuples()
    assert (row.errors_repeat0, row.n_flagged, row.n_unflagged) == (0, 4, 0)
    for name in ("errors_repeat0_caught_share", "accuracy_mean_unflagged", "accuracy_repeat0_unflagged"):
        assert math.isnan(getattr(row, name)) and math.isnan(getattr(row, f"{name}_ci_low")), name


def test_settings_keep_their_order_and_repeats_may_list_cases_in_any_order():
    shuffled = [table(p) for p in P]
    shuffled[1] = shuffled[1].iloc[[3, 1, 0, 2]].reset_index(drop=True)
    cases, summary = uncertainty_tables({"nostriatum": shuffled, "full": repeats()}, "sd", 0.1)
    assert list(summary["setting"]) == ["nostriatum", "full"]
    a, b = (cases[cases["setting"] == s].drop(columns="setting").reset_index(drop=True) for s in ("nostriatum", "full"))
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("measure, threshold", [("sd", -0.01), ("sd", 1.5), ("range", float("nan")),
                                                ("sd", "high"), ("sd", None), ("iqr", 0.1)])
def test_bad_measure_or_threshold_is_refused(measure, threshold):
    with pytest.raises(ValueError, match="measure" if measure == "iqr" else "threshold"):
        check_uncertainty_params(measure, threshold)
    with pytest.raises(ValueError):
        case_uncertainty(repeats(), "full", measure, threshold)


def test_threshold_bounds_are_allowed():
    for t in (0, 0.0, 1, 1.0):
        check_uncertainty_params("sd", t)


def test_mismatching_subjects_are_named():
    reps = repeats()
    reps[2] = table(P[2], subjects=["sub-0001", "sub-0002", "sub-0003", "sub-0009"])
    with pytest.raises(ValueError) as err:
        case_uncertainty(reps, "full")
    msg = str(err.value)
    assert "'full'" in msg and "repeat 2" in msg and "sub-0004" in msg and "sub-0009" in msg


def test_other_bad_inputs_are_named():
    with pytest.raises(ValueError, match="at least 2 repeats"):
        case_uncertainty(repeats()[:1], "full")
    reps = repeats()
    reps[1] = table(P[1], labels=["reduced", "normal", "normal", "normal"])
    with pytest.raises(ValueError, match=r"repeat 1 gives other labels .*sub-0003"):
        case_uncertainty(reps, "full")
    reps = repeats()
    reps[1] = table(P[1], subjects=["sub-0001", "sub-0002", "sub-0002", "sub-0004"])
    with pytest.raises(ValueError, match=r"repeat 1: subject\(s\) listed more than once: \['sub-0002'\]"):
        case_uncertainty(reps, "full")
    reps = repeats()
    reps[2].loc[1, "p_reduced"] = float("nan")
    with pytest.raises(ValueError, match=r"repeat 2: p_reduced outside \[0, 1\].*sub-0002"):
        case_uncertainty(reps, "full")
    reps = repeats()
    reps[0] = reps[0].drop(columns="p_reduced")
    with pytest.raises(ValueError, match=r"repeat 0: predictions lack column\(s\) \['p_reduced'\]"):
        case_uncertainty(reps, "full")


def test_collect_writes_both_tables_and_names_the_files(tmp_path):
    paths = []
    for r, p in enumerate(P):
        paths.append(tmp_path / f"full_repeat-{r}_predictions.tsv")
        table(p).to_csv(paths[-1], sep="\t", index=False)
    cases, summary = collect_uncertainty({"full": paths}, tmp_path / "cases.tsv", tmp_path / "summary.tsv")
    back = pd.read_csv(tmp_path / "cases.tsv", sep="\t")
    assert list(back.columns) == list(CASE_COLUMNS) and list(back["flagged"]) == ["no", "yes", "yes", "yes"]
    assert pd.read_csv(tmp_path / "summary.tsv", sep="\t")["errors_repeat0_caught_share"].tolist() == [1.0]
    table(P[1], subjects=["sub-0001", "sub-0002", "sub-0003", "sub-0009"]).to_csv(paths[1], sep="\t", index=False)
    with pytest.raises(InputError, match=r"repeat 1 lacks \['sub-0004'\].*full_repeat-1_predictions.tsv"):
        collect_uncertainty({"full": paths}, tmp_path / "c.tsv", tmp_path / "s.tsv")
