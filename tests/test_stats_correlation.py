"""Pearson R, P and Fisher-z CI against scipy; subsets per cluster."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from datxai.stats.correlation import cluster_sbr_correlations, pearson_fisher


def test_pearson_matches_scipy(rng):
    x = rng.normal(size=41)
    y = 0.4 * x + rng.normal(size=41)
    r = pearson_fisher(x, y)
    ref = stats.pearsonr(x, y)
    ci = ref.confidence_interval(0.95)  # scipy: Fisher transformation
    assert r["r"] == pytest.approx(ref.statistic, rel=1e-10)
    assert r["p"] == pytest.approx(ref.pvalue, rel=1e-8)
    assert (r["r_ci_low"], r["r_ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-8)
    assert r["n"] == 41


def test_degenerate():
    assert np.isnan(pearson_fisher([1, 2], [3, 4])["r"])
    assert np.isnan(pearson_fisher([1, 1, 1, 1], [1, 2, 3, 4])["r"])
    with pytest.raises(ValueError, match="y has"):
        pearson_fisher([1, 2, 3], [1, 2])


def test_cluster_subsets(rng):
    n = 30
    sbr = rng.uniform(1, 3, n)
    lab = np.where(sbr < 2, "reduced", "normal")
    df = pd.DataFrame({"subject": [f"s{i}" for i in range(n)], "cluster": 1, "cluster_label": "A", "side": "I",
                       "uptake": 0.5 + 0.1 * sbr + rng.normal(0, 0.02, n), "label": lab, "sbr_putamen_ipsi": sbr})
    out = cluster_sbr_correlations(df)
    assert list(out["subset"]) == ["all", "reduced", "normal"]
    assert out["n"].tolist() == [n, int((lab == "reduced").sum()), int((lab == "normal").sum())]
    sel = lab == "normal"
    assert out.iloc[2]["r"] == pytest.approx(stats.pearsonr(df["uptake"][sel], sbr[sel]).statistic)
    with pytest.raises(ValueError, match="sbr_x"):
        cluster_sbr_correlations(df, "sbr_x")
