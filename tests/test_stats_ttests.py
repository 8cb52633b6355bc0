"""t-tests against scipy, Cohen's d against the t identity, Holm against hand-computed values."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from datxai.stats.ttests import cluster_ttests, holm, two_sample_ttest


@pytest.mark.parametrize("kind", ["welch", "student"])
def test_ttest_matches_scipy(rng, kind):
    a = rng.normal(0.9, 0.15, 23)
    b = rng.normal(1.0, 0.08, 31)  # unequal variances and sizes: Welch and Student differ
    r = two_sample_ttest(a, b, kind)
    ref = stats.ttest_ind(a, b, equal_var=(kind == "student"))
    # same formulas, independent code: agreement to rounding error
    assert r["t"] == pytest.approx(ref.statistic, rel=1e-10)
    assert r["p"] == pytest.approx(ref.pvalue, rel=1e-8)
    assert r["df"] == pytest.approx(ref.df, rel=1e-10)
    assert r["n_reduced"] == 23 and r["n_normal"] == 31
    assert r["mean_reduced"] == pytest.approx(a.mean()) and r["sd_normal"] == pytest.approx(b.std(ddof=1))
    assert kind in r["test"]


def test_cohen_d_identity(rng):
    a, b = rng.normal(0, 1, 12), rng.normal(0.5, 1, 17)
    r = two_sample_ttest(a, b, "welch")
    t_student = stats.ttest_ind(a, b).statistic
    # d (pooled SD) = t_Student * sqrt(1/n1 + 1/n2)
    assert r["cohen_d"] == pytest.approx(t_student * np.sqrt(1 / 12 + 1 / 17), rel=1e-10)


def test_ttest_degenerate_and_bad():
    r = two_sample_ttest([1.0], [1.0, 2.0, 3.0])
    assert np.isnan(r["p"]) and r["n_reduced"] == 1
    with pytest.raises(ValueError, match="stats.ttest"):
        two_sample_ttest([1, 2], [3, 4], "paired")


def test_holm_hand_example():
    # sorted p: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> monotone 0.06
    p = [0.01, 0.04, 0.03, 0.005, np.nan]
    out = holm(p)
    np.testing.assert_allclose(out[:4], [0.03, 0.06, 0.06, 0.02], rtol=1e-12)
    assert np.isnan(out[4])  # NaNs are not counted among the tests


def test_holm_against_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = np.array([0.2, 0.001, 0.049, 0.5, 0.012, 0.03])
    np.testing.assert_allclose(holm(p), multipletests(p, method="holm")[1])
    assert np.all(holm(p) >= p) and np.all(holm(p) <= 1)


def test_cluster_ttests_holm_within_subset(rng):
    rows = []
    for c, effect in ((1, -0.2), (2, 0.0), (3, -0.05)):
        for i in range(60):
            lab = "reduced" if i % 2 else "normal"
            rows.append({"subject": f"sub-{i:02d}", "cluster": c, "cluster_label": f"R{c}", "side": "IC"[c % 2],
                         "label": lab, "subset": ["train", "test", "val"][i % 3],
                         "uptake": 1 + (effect if lab == "reduced" else 0) + rng.normal(0, 0.05)})
    out = cluster_ttests(pd.DataFrame(rows), "student")
    assert len(out) == 6 and set(out["subset"]) == {"train", "test"}  # val is not tested
    for subset, g in out.groupby("subset"):
        np.testing.assert_allclose(g["p_holm"], holm(g["p"]))
    first = out[(out["cluster"] == 1) & (out["subset"] == "train")].iloc[0]
    assert first["t"] < 0 and first["cohen_d"] < -1  # reduced minus normal: lower uptake = negative
    assert first["df"] == first["n_reduced"] + first["n_normal"] - 2
