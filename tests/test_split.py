"""Stratified, age-balanced split: reproducibility, strata, sizes, leakage, criterion, ANOVA."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from datxai.split import (SUBSETS, SplitError, age_imbalance, allocate, balance_table, check_leakage,
                          make_split, subset_totals, two_way_anova)


def cohort(rng, n=83, p_red=0.45, p_f=0.4):
    return pd.DataFrame({
        "subject": [f"sub-{i:04d}" for i in range(1, n + 1)],
        "age": rng.normal(67, 11, n).round(1),
        "sex": np.where(rng.random(n) < p_f, "F", "M"),
        "label": np.where(rng.random(n) < p_red, "reduced", "normal"),
    })


def test_reproducible_and_seed_dependent(rng):
    t = cohort(rng)
    a, ia = make_split(t, {"train": 0.6, "val": 0.1, "test": 0.3}, n_draws=20, seed=7)
    b, ib = make_split(t.sample(frac=1, random_state=1), {"train": 0.6, "val": 0.1, "test": 0.3}, n_draws=20, seed=7)
    pd.testing.assert_frame_equal(a, b)  # same seed -> same split, whatever the row order of the sheet
    c, _ = make_split(t, {"train": 0.6, "val": 0.1, "test": 0.3}, n_draws=20, seed=8)
    assert not a.equals(c)


@pytest.mark.parametrize("sizes, expected", [
    ({"train": 0.6, "val": 0.1, "test": 0.3}, {"train": 50, "val": 8, "test": 25}),  # 49.8, 8.3, 24.9
    ({"train": 40, "val": 10, "test": 20}, {"train": 40, "val": 10, "test": 20}),  # 13 left out
])
def test_sizes_stratification_and_no_leakage(rng, sizes, expected):
    t = cohort(rng)
    split, info = make_split(t, sizes, n_draws=5, seed=1)
    assert split["subset"].value_counts().to_dict() == expected
    assert not split["subject"].duplicated().any()
    assert set(split["subject"]) <= set(t["subject"])
    # stratified: within every sex x class stratum, each subset's share is its quota within one subject
    n = len(t)
    m = t.merge(split, on="subject")
    for (sex, lab), g in t.groupby(["sex", "label"]):
        got = m[(m["sex"] == sex) & (m["label"] == lab)]["subset"].value_counts()
        for k in SUBSETS:
            quota = len(g) * expected[k] / n
            assert abs(got.get(k, 0) - quota) < 1 + 1e-9, (sex, lab, k)
    # both classes in every subset
    assert (m.groupby("subset")["label"].nunique() == 2).all()


def test_allocation_margins_are_exact(rng):
    for _ in range(50):
        sizes = {k: int(v) for k, v in zip("abcd", rng.integers(1, 40, 4))}
        n = sum(sizes.values())
        cut = np.sort(rng.integers(0, n + 1, 2))
        totals = {"train": int(cut[0]), "val": int(cut[1] - cut[0]), "test": int(n - cut[1] - rng.integers(0, n - cut[1] + 1))}
        alloc = allocate(sizes, totals)
        for s, a in alloc.items():
            assert sum(a.values()) == sizes[s] and min(a.values()) >= 0
        for k in SUBSETS:
            assert sum(a[k] for a in alloc.values()) == totals[k]


def test_impossible_sizes_raise_clearly(rng):
    t = cohort(rng, n=30)
    with pytest.raises(SplitError, match="40 subjects requested.*only 30"):
        make_split(t, {"train": 20, "val": 10, "test": 10})
    with pytest.raises(SplitError, match="sum to 1"):
        subset_totals({"train": 0.6, "val": 0.1, "test": 0.2}, 30)
    with pytest.raises(SplitError, match="no subject"):
        subset_totals({"train": 0.98, "val": 0.01, "test": 0.01}, 30)
    one_reduced = t.assign(label="normal")
    one_reduced.loc[0, "label"] = "reduced"
    with pytest.raises(SplitError, match="would get no 'reduced' subject"):
        make_split(one_reduced, {"train": 0.6, "val": 0.1, "test": 0.3})


def test_leakage_check():
    ok = pd.DataFrame({"subject": ["sub-1", "sub-2"], "subset": ["train", "test"]})
    check_leakage(ok)
    with pytest.raises(SplitError, match="leakage.*sub-1"):
        check_leakage(pd.DataFrame({"subject": ["sub-1", "sub-1"], "subset": ["train", "test"]}))
    with pytest.raises(SplitError, match="unknown subset"):
        check_leakage(pd.DataFrame({"subject": ["sub-1"], "subset": ["holdout"]}))


def test_age_imbalance_by_hand():
    t = pd.DataFrame({"subject": list("abcdefg"), "age": [60, 70, 65, 80, 50, 50, 90],
                      "sex": ["F"] * 3 + ["M"] * 4, "label": ["normal"] * 3 + ["reduced"] * 4})
    a = {"a": "train", "b": "test", "c": "val", "d": "train", "e": "train", "f": "test", "g": "val"}
    # F/normal: means 60, 65, 70 -> range 10; M/reduced: train 65, test 50, val 90 -> range 40
    assert age_imbalance(t, a) == pytest.approx(50.0)


def test_more_draws_never_worse_and_criterion_reported(rng):
    t = cohort(rng, n=60)
    ds = []
    for k in (1, 5, 25):
        split, info = make_split(t, {"train": 0.6, "val": 0.1, "test": 0.3}, n_draws=k, seed=3)
        assert info["age_imbalance"] == pytest.approx(age_imbalance(t, dict(zip(split["subject"], split["subset"]))))
        ds.append(info["age_imbalance"])
    assert ds[0] >= ds[1] >= ds[2] and ds[0] > ds[2]


def test_two_way_anova_matches_hand_computation_on_a_balanced_table(rng):
    # balanced 3 x 2 design, 4 per cell: type I = II = III, so the classic formulas apply
    rows = [(k, lab, v) for k in SUBSETS for lab in ("normal", "reduced") for v in rng.normal(
        60 + 3 * (k == "test") + 2 * (lab == "reduced"), 5, 4)]
    d = pd.DataFrame(rows, columns=["subset", "label", "age"])
    y, grand = d["age"].to_numpy(), d["age"].mean()
    ma = d.groupby("subset")["age"].mean()
    mb = d.groupby("label")["age"].mean()
    mab = d.groupby(["subset", "label"])["age"].transform("mean")
    ss_a = 8 * ((ma - grand) ** 2).sum()
    ss_b = 12 * ((mb - grand) ** 2).sum()
    ss_e = ((y - mab) ** 2).sum()
    ss_ab = ((mab - grand) ** 2).sum() - ss_a - ss_b
    df_e = 24 - 6
    expect = {"subset": (ss_a / 2, 2), "label": (ss_b / 1, 1), "subset:label": (ss_ab / 2, 2)}
    a = two_way_anova(d, "age").set_index("term")
    for term, (ms, df) in expect.items():
        f = ms / (ss_e / df_e)
        assert a.loc[term, "F"] == pytest.approx(f, rel=1e-9)
        assert a.loc[term, "p"] == pytest.approx(stats.f.sf(f, df, df_e), rel=1e-9)
        assert a.loc[term, "df"] == df and a.loc[term, "df_resid"] == df_e
    # one factor only: the subset term equals scipy's one-way ANOVA
    one = d[d["label"] == "normal"]
    a1 = two_way_anova(one, "age").set_index("term")
    ref = stats.f_oneway(*[g["age"] for _, g in one.groupby("subset")])
    assert a1.loc["subset", "F"] == pytest.approx(ref.statistic, rel=1e-9)
    assert a1.loc["subset", "p"] == pytest.approx(ref.pvalue, rel=1e-9)
    assert np.isnan(a1.loc["label", "F"])


def test_balance_table_counts(rng):
    t = cohort(rng, n=50)
    split, _ = make_split(t, {"train": 0.6, "val": 0.2, "test": 0.2}, n_draws=3, seed=2)
    b = balance_table(t, split)
    an = b[b["section"] == "anova"]
    assert set(zip(an["dependent"], an["term"])) == {(d, k) for d in ("age", "sex") for k in ("subset", "label", "subset:label")}
    assert an["p"].between(0, 1).all()
    c = b[b["section"] == "counts"].set_index(["subset", "label"])
    assert c.loc[("all", "all"), "n"] == 50
    assert c.loc[("train", "all"), "n"] == 30
    assert c.loc[("all", "reduced"), "n_female"] == ((t["label"] == "reduced") & (t["sex"] == "F")).sum()


def test_cli(tmp_path, rng):
    from datxai.cli import main

    t = cohort(rng, n=40)
    t.to_csv(tmp_path / "participants.tsv", sep="\t", index=False)
    assert main(["split", str(tmp_path / "participants.tsv"), "--out-dir", str(tmp_path / "out"),
                 "--sizes", "24", "6", "10", "--n-draws", "3", "--seed", "5"]) == 0
    s = pd.read_csv(tmp_path / "out" / "split.tsv", sep="\t")
    assert s["subset"].value_counts().to_dict() == {"train": 24, "test": 10, "val": 6}
    assert (tmp_path / "out" / "balance.tsv").is_file()
