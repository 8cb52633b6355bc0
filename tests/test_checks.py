"""datxai.checks: one wording for every choice and range error ("<name> must be ...; got <value>")."""

import math
import re
from fractions import Fraction

import numpy as np
import pytest

from datxai.checks import check_choice, check_range
from datxai.io import InputError


def message(fn, *args, **kwargs) -> str:
    with pytest.raises(ValueError) as err:
        fn(*args, **kwargs)
    return str(err.value)


# ---- check_choice


def test_choice_wording_lists_allowed_values_in_the_given_order():
    assert message(check_choice, "reconstruct.filter", "hanning", ("shepp-logan", "ram-lak", "hann")) == (
        "reconstruct.filter must be one of ['shepp-logan', 'ram-lak', 'hann']; got 'hanning'"
    )
    # the given order, not sorted: mixed types (None and strings) need no ordering
    assert message(check_choice, "side", "X", (None, "R", "L")) == "side must be one of [None, 'R', 'L']; got 'X'"
    # any iterable: a dict's keys, a set (its iteration order)
    assert message(check_choice, "direction", "up", {"lower": 1, "higher": 2}) == (
        "direction must be one of ['lower', 'higher']; got 'up'"
    )


def test_choice_returns_the_value_when_allowed():
    assert check_choice("group.connectivity", 26, (6, 18, 26)) == 26
    assert check_choice("side", None, (None, "L", "R")) is None
    assert check_choice("group.connectivity", 6.0, (6, 18, 26)) == 6.0  # == membership
    assert check_choice("x", np.str_("hann"), ("hann",)) == "hann"
    assert check_choice("x", np.int64(18), (6, 18, 26)) == 18


def test_choice_refuses_bools_for_numbers_and_numbers_for_bools():
    assert message(check_choice, "n_heads", True, (1, 2)) == "n_heads must be one of [1, 2]; got True"
    assert message(check_choice, "flag", 1, (True, False)) == "flag must be one of [True, False]; got 1"
    assert check_choice("flag", np.bool_(True), (True, False))


def test_choice_shows_numpy_scalars_as_python_values():
    assert message(check_choice, "group.connectivity", np.int64(7), np.array([6, 18, 26])) == (
        "group.connectivity must be one of [6, 18, 26]; got 7"
    )


def test_choice_of_an_unhashable_or_array_value_is_refused_not_crashed():
    assert "got [1, 2]" in message(check_choice, "x", [1, 2], ("a", "b"))
    assert message(check_choice, "x", np.array([6, 18]), (6, 18)).startswith("x must be one of [6, 18]; got ")
    assert message(check_choice, "x", np.array([6]), (6, 18)).startswith("x must be one of [6, 18]; got ")


def test_choice_keeps_the_callers_exception_type():
    with pytest.raises(InputError, match=re.escape("a.dcm: RotationDirection must be one of ['CW', 'CC']; got 'XX'")):
        check_choice("a.dcm: RotationDirection", "XX", ("CW", "CC"), exc=InputError)


# ---- check_range


def test_range_wording_of_one_sided_bounds():
    assert message(check_range, "train.epochs", 0, 1) == "train.epochs must be >= 1; got 0"
    assert message(check_range, "train.learning_rate", 0.0, 0, low_inclusive=False) == (
        "train.learning_rate must be > 0; got 0.0"
    )
    assert message(check_range, "p", 1.5, high=1) == "p must be <= 1; got 1.5"
    assert message(check_range, "p", 1, high=1, high_inclusive=False) == "p must be < 1; got 1"


def test_range_wording_of_intervals_uses_brackets():
    assert message(check_range, "model.dropout", 1.0, 0.0, 1.0, high_inclusive=False) == (
        "model.dropout must be in [0, 1); got 1.0"
    )
    assert message(check_range, "group.percentile", 100, 0, 100, low_inclusive=False, high_inclusive=False) == (
        "group.percentile must be in (0, 100); got 100"
    )
    assert message(check_range, "scale.reference_percentile", 0, 0, 100, low_inclusive=False) == (
        "scale.reference_percentile must be in (0, 100]; got 0"
    )
    assert message(check_range, "x", 3, 0.5, 2.25) == "x must be in [0.5, 2.25]; got 3"  # non-integral bounds as given


@pytest.mark.parametrize(
    "value, low_inclusive, high_inclusive, ok",
    [
        (0, True, True, True), (0, False, True, False),
        (1, True, True, True), (1, True, False, False),
        (0.5, False, False, True),
        (-1e-12, True, True, False), (1 + 1e-12, True, True, False),
    ],
)
def test_range_inclusive_and_exclusive_bounds(value, low_inclusive, high_inclusive, ok):
    call = lambda: check_range("x", value, 0, 1, low_inclusive=low_inclusive, high_inclusive=high_inclusive)
    if ok:
        assert call() == value
    else:
        with pytest.raises(ValueError, match=r"^x must be in [\[(]0, 1[\])]; got "):
            call()


def test_range_returns_the_value_unchanged():
    v = np.float32(0.25)
    assert check_range("x", v, 0, 1) is v
    assert check_range("x", Fraction(1, 3), 0, 1) == Fraction(1, 3)
    assert check_range("x", 10**400, 1) == 10**400  # big ints are compared exactly, not via float


def test_range_refuses_nan_whatever_the_bounds():
    assert message(check_range, "explain.epsilon", float("nan"), 0, low_inclusive=False) == (
        "explain.epsilon must be > 0; got nan"
    )
    assert message(check_range, "x", np.float64("nan"), 0, 1) == "x must be in [0, 1]; got nan"
    assert message(check_range, "x", math.nan) == "x must be a number; got nan"


def test_range_lets_infinity_obey_the_bounds():
    assert check_range("x", math.inf, 1) == math.inf
    assert message(check_range, "x", math.inf, 0, 100) == "x must be in [0, 100]; got inf"
    assert message(check_range, "x", -math.inf, 0) == "x must be >= 0; got -inf"


@pytest.mark.parametrize("value", [True, False, np.bool_(True), "3", None, [1], np.array([1.0, 2.0])])
def test_range_refuses_bools_and_non_numbers(value):
    msg = message(check_range, "train.epochs", value, 1)
    assert msg.startswith("train.epochs must be a number >= 1; got ")


def test_range_shows_numpy_scalars_as_python_values():
    assert message(check_range, "x", np.float64(1.5), 0, 1) == "x must be in [0, 1]; got 1.5"
    assert message(check_range, "x", np.int64(0), np.int64(1)) == "x must be >= 1; got 0"


def test_range_keeps_the_callers_exception_type():
    with pytest.raises(InputError, match=re.escape("a.dcm: NumberOfFramesInRotation must be >= 1; got 0")):
        check_range("a.dcm: NumberOfFramesInRotation", 0, 1, exc=InputError)


def test_callers_word_their_errors_through_the_helper():
    """A few converted call sites: the config key, the requirement, the value, one form."""
    from datxai.batches import n_batches
    from datxai.grid import Grid
    from datxai.split import SplitError, subset_totals

    with pytest.raises(ValueError, match=re.escape("execution.subjects_per_job must be >= 1; got 0")):
        n_batches(10, 0)
    with pytest.raises(ValueError, match=re.escape("grid.voxel_mm must be > 0; got 0")):
        Grid((4, 4, 4), 0)
    with pytest.raises(SplitError, match=re.escape("split.sizes.val must be >= 0; got -0.1")):
        subset_totals({"train": 0.6, "val": -0.1, "test": 0.5}, 10)
