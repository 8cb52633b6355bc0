"""ROC: AUC and DeLong variance against the literature, a direct O(n^2) DeLong, the bootstrap and scipy."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from datxai.stats.roc import cluster_roc, delong_auc, roc_auc, roc_curve

# Hanley & McNeil (1982, Radiology 143:29), Table 1: CT ratings 1 (definitely normal) .. 5
# (definitely abnormal) of 58 normal and 51 abnormal patients; published AUC 0.893, SE 0.032.
HM_NEG = np.repeat([1, 2, 3, 4, 5], [33, 6, 6, 11, 2])
HM_POS = np.repeat([1, 2, 3, 4, 5], [3, 2, 2, 11, 33])


def delong_direct(pos, neg):
    """DeLong et al. (1988) structural components, written out with the O(m n) kernel matrix."""
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    auc = psi.mean()
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    s10 = ((v10 - auc) ** 2).sum() / (pos.size - 1)
    s01 = ((v01 - auc) ** 2).sum() / (neg.size - 1)
    return auc, s10 / pos.size + s01 / neg.size


def test_hanley_mcneil_rating_data():
    auc, var = delong_auc(HM_POS, HM_NEG)
    assert round(auc, 3) == 0.893
    # The published SE 0.032 is Hanley-McNeil's exponential approximation; reproduce it from our
    # AUC to show the AUC is theirs, then check DeLong's non-parametric SE is close (different
    # estimators: within 0.0025, i.e. ~8 %).
    m, n = HM_POS.size, HM_NEG.size
    q1, q2 = auc / (2 - auc), 2 * auc ** 2 / (1 + auc)
    se_hm = np.sqrt((auc * (1 - auc) + (m - 1) * (q1 - auc ** 2) + (n - 1) * (q2 - auc ** 2)) / (m * n))
    assert round(se_hm, 3) == 0.032
    assert abs(np.sqrt(var) - 0.032) < 0.0025


@pytest.mark.parametrize("ties", [False, True])
def test_fast_delong_equals_direct(rng, ties):
    pos = rng.normal(1.0, 1.0, 37)
    neg = rng.normal(0.0, 1.3, 52)
    if ties:  # rating-like data with many ties
        pos, neg = np.round(pos), np.round(neg)
    auc, var = delong_auc(pos, neg)
    auc_d, var_d = delong_direct(pos, neg)
    # same estimator, two algorithms: equal to rounding error
    assert auc == pytest.approx(auc_d, abs=1e-12)
    assert var == pytest.approx(var_d, rel=1e-10)


def test_delong_variance_close_to_bootstrap(rng):
    pos = rng.normal(0.8, 1.0, 60)
    neg = rng.normal(0.0, 1.0, 70)
    _, var = delong_auc(pos, neg)
    b = 2000
    boot = np.empty(b)
    brng = np.random.default_rng(7)
    for i in range(b):  # stratified bootstrap (resample within each class)
        bp = pos[brng.integers(0, pos.size, pos.size)]
        bn = neg[brng.integers(0, neg.size, neg.size)]
        boot[i] = ((bp[:, None] > bn[None, :]) + 0.5 * (bp[:, None] == bn[None, :])).mean()
    # Monte-Carlo error of a bootstrap SD with B = 2000 is ~1/sqrt(2B) = 1.6 %; DeLong and the
    # bootstrap differ by O(1/n) besides: 10 % relative tolerance on the SE.
    assert np.sqrt(var) == pytest.approx(boot.std(ddof=1), rel=0.10)


def test_roc_auc_direction_and_mann_whitney(rng):
    uptake = np.concatenate([rng.normal(0.9, 0.1, 25), rng.normal(1.0, 0.1, 30)])
    reduced = np.r_[np.ones(25, bool), np.zeros(30, bool)]
    lo = roc_auc(uptake, reduced, "lower")
    hi = roc_auc(uptake, reduced, "higher")
    # no ties in continuous data: the two directions are complementary
    assert lo["auc"] + hi["auc"] == pytest.approx(1.0, abs=1e-12)
    # AUC (lower = reduced) = P(normal > reduced) = U(normal) / (m n), from scipy
    u = stats.mannwhitneyu(uptake[~reduced], uptake[reduced]).statistic
    assert lo["auc"] == pytest.approx(u / (25 * 30), abs=1e-12)
    assert lo["p"] == pytest.approx(stats.mannwhitneyu(uptake[reduced], uptake[~reduced]).pvalue)
    assert lo["auc_ci_low"] < lo["auc"] < lo["auc_ci_high"]
    assert lo["n_reduced"] == 25 and lo["n_normal"] == 30
    assert "lower" in lo["direction"]


def test_roc_curve_area_equals_auc(rng):
    values = np.round(rng.normal(0, 1, 80), 1)  # ties: the trapezoid counts them one half
    positive = rng.random(80) < 0.4
    fpr, tpr, thr = roc_curve(values, positive, "lower")
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert np.trapezoid(tpr, fpr) == pytest.approx(roc_auc(values, positive, "lower")["auc"], abs=1e-12)
    # threshold t calls reduced when value <= t: the last threshold calls everybody
    assert thr[-1] == values.max()


def test_bad_input():
    with pytest.raises(ValueError, match="both classes"):
        delong_auc([], [1.0, 2.0])
    with pytest.raises(ValueError, match="direction"):
        roc_auc([1.0, 2.0], [True, False], "up")
    with pytest.raises(ValueError, match="NaN"):
        roc_auc([1.0, np.nan], [True, False])


def test_cluster_roc_per_subset(rng):
    rows = []
    for c in (1, 2):
        for i in range(40):
            lab = "reduced" if i % 2 else "normal"
            rows.append({"subject": f"sub-{i:02d}", "cluster": c, "cluster_label": f"R{c}", "side": "I",
                         "label": lab, "subset": "train" if i < 30 else "test",
                         "uptake": rng.normal(0.8 if lab == "reduced" and c == 1 else 1.0, 0.1)})
    out = cluster_roc(pd.DataFrame(rows))
    assert list(out["subset"]) == ["train", "train", "test", "test"]
    assert (out[["n_reduced", "n_normal"]].to_numpy() == [[15, 15]] * 2 + [[5, 5]] * 2).all()
    assert out.iloc[0]["auc"] > 0.8  # cluster 1 carries the effect
