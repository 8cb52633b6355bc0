"""ANCOVA of cluster uptake adjusted for the putamen SBR (datxai.stats.ancova): a second implementation and
synthetic groups with a known answer (spill-over only vs a planted extrastriatal effect)."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from datxai.stats.ancova import COLUMNS, ancova, cluster_ancova


def _groups(rng, n=120, effect=0.0):
    """Reduced scans have a lower putamen SBR; uptake depends on the SBR (spill-over) plus ``effect`` in reduced."""
    reduced = np.arange(n) < n // 2
    sbr = np.where(reduced, rng.normal(1.5, 0.4, n), rng.normal(3.0, 0.4, n))
    uptake = 0.85 + 0.03 * sbr + effect * reduced + rng.normal(0, 0.01, n)
    return uptake, reduced, sbr


def test_matches_a_second_implementation():
    # normal equations and the textbook standard error, by hand
    rng = np.random.default_rng(3)
    y, g, c = _groups(rng, effect=-0.01)
    x = np.column_stack([np.ones(len(y)), g, c])
    beta = np.linalg.solve(x.T @ x, x.T @ y)
    resid = y - x @ beta
    df = len(y) - 3
    se = np.sqrt(resid @ resid / df * np.linalg.inv(x.T @ x).diagonal())
    t = beta / se
    r = ancova(y, g, c)
    assert r["diff_adjusted"] == pytest.approx(beta[1], rel=1e-10)
    assert r["t_adjusted"] == pytest.approx(t[1], rel=1e-8)
    assert r["slope_covariate"] == pytest.approx(beta[2], rel=1e-10)
    assert r["p_adjusted"] == pytest.approx(2 * stats.t.sf(abs(t[1]), df), rel=1e-8)
    half = stats.t.ppf(0.975, df) * se[1]
    assert (r["diff_adjusted_ci_low"], r["diff_adjusted_ci_high"]) == pytest.approx((beta[1] - half, beta[1] + half))
    assert r["diff_unadjusted"] == pytest.approx(y[g].mean() - y[~g].mean())


def test_spill_over_vanishes_and_a_planted_effect_stays():
    rng = np.random.default_rng(11)
    spill = ancova(*_groups(rng, effect=0.0))
    # the unadjusted difference is large (0.03 x 1.5 SBR), the adjusted one is zero within its CI
    assert spill["diff_unadjusted"] < -0.04
    assert spill["diff_adjusted_ci_low"] < 0 < spill["diff_adjusted_ci_high"]
    planted = ancova(*_groups(rng, effect=-0.02))
    assert planted["diff_adjusted_ci_low"] < -0.02 < planted["diff_adjusted_ci_high"]
    assert planted["p_adjusted"] < 1e-6


def test_cluster_table_holm_and_undefined_cells(caplog):
    rng = np.random.default_rng(5)
    rows = []
    for cluster, effect in ((1, 0.0), (2, -0.02)):
        y, g, c = _groups(rng, n=80, effect=effect)
        for i in range(80):
            rows.append({"subject": f"s{i}", "cluster": cluster, "cluster_label": f"R{cluster}", "side": "I",
                         "uptake": y[i], "label": "reduced" if g[i] else "normal", "sbr_putamen_ipsi": c[i],
                         "subset": "train" if i % 4 else "test"})
    table = pd.DataFrame(rows)
    table.loc[(table.subset == "test") & (table.cluster == 1) & (table.label == "normal"), "subset"] = "val"
    out = cluster_ancova(table, "sbr_putamen_ipsi")
    assert list(out.columns) == COLUMNS and len(out) == 4
    train = out[out.subset == "train"].set_index("cluster")
    assert train.loc[2, "p_adjusted"] < 1e-4 and train.loc[1, "diff_adjusted_ci_low"] < 0
    p = train["p_adjusted"].sort_values()
    assert train.loc[p.index[0], "p_adjusted_holm"] == pytest.approx(min(1, 2 * p.iloc[0]))
    # cluster 1 of the test set has no normal scans left: NaN, with a warning
    cell = out[(out.subset == "test") & (out.cluster == 1)].iloc[0]
    assert cell.n_normal == 0 and np.isnan(cell.p_adjusted) and "ANCOVA undefined" in caplog.text
    with pytest.raises(ValueError, match="sbr_putamen_contra"):
        cluster_ancova(table, "sbr_putamen_contra")
