"""The voxelwise comparator (datxai.group.voxelwise) against scipy's t-test, an independent max-T
permutation loop, the nominal family-wise error rate and a planted effect."""

import numpy as np
import pytest
from scipy import stats

from datxai.grid import Grid
from datxai.group.voxelwise import comparator_clusters, fwe_threshold, voxelwise_ttest

SHAPE = (10, 12, 8)


def _grid():
    return Grid(SHAPE, 4.0, (0.0, 0.0, 0.0))


def _data(rng, n_red=12, n_nor=14, effect=0.0, where=None):
    x = rng.normal(1.0, 0.1, size=(n_red + n_nor, *SHAPE))
    reduced = np.r_[np.ones(n_red, bool), np.zeros(n_nor, bool)]
    if where is not None:
        x[(slice(0, n_red),) + where] -= effect
    return x, reduced


def test_t_is_the_student_two_sample_t_of_reduced_minus_normal():
    rng = np.random.default_rng(0)
    x, red = _data(rng, effect=0.05, where=(slice(0, 3), slice(0, 3), slice(0, 3)))
    mask = np.ones(SHAPE, bool)
    mask[-1] = False
    res = voxelwise_ttest(x, red, mask, n_perm=50, seed=1)
    ref = stats.ttest_ind(x[red], x[~red], axis=0, equal_var=True).statistic
    np.testing.assert_allclose(res.t[mask], ref[mask], rtol=1e-9, atol=1e-9)
    assert np.isnan(res.t[~mask]).all() and np.isnan(res.p_fwe[~mask]).all()
    assert res.t[0, 0, 0] < 0  # lower uptake in the reduced group gives negative t


def test_threshold_matches_nilearns_fwe_p_values_and_an_independent_permutation_loop():
    rng = np.random.default_rng(2)
    x, red = _data(rng, effect=0.25, where=(slice(2, 5), slice(2, 5), slice(2, 5)))
    mask = np.ones(SHAPE, bool)
    res = voxelwise_ttest(x, red, mask, n_perm=2000, seed=3, alpha=0.05)
    # the threshold and nilearn's max-T p-values make the same decision everywhere
    np.testing.assert_array_equal(res.significant, res.p_fwe <= 0.05 + 1e-12)
    # an independent max-T loop (own permutations, scipy's t): its 95th percentile agrees within sampling error
    own = np.random.default_rng(99)
    y = x.reshape(len(x), -1)
    maxima = []
    for _ in range(2000):
        p = own.permutation(red)
        maxima.append(np.abs(stats.ttest_ind(y[p], y[~p], axis=0).statistic).max())
    assert res.threshold == pytest.approx(np.quantile(maxima, 0.95), rel=0.06)
    assert res.significant[3, 3, 3] and res.significant.sum() >= 20


def test_fwe_threshold_by_hand():
    h0 = np.arange(1, 20, dtype=float)  # 19 null maxima, 20 labellings with the observed one
    assert fwe_threshold(h0, 0.05) == 19.0  # k = floor(0.05 * 20) - 1 = 0: above the largest
    assert fwe_threshold(h0, 0.10) == 18.0  # k = 1: at most one null maximum at or above |t|
    with pytest.raises(ValueError, match="n_perm"):
        fwe_threshold(h0[:10], 0.05)  # 11 labellings cannot give p <= 0.05
    with pytest.raises(ValueError, match="alpha"):
        fwe_threshold(h0, 1.5)


def test_family_wise_error_rate_is_nominal_under_the_null():
    rng = np.random.default_rng(5)
    mask = np.ones((6, 6, 5), bool)
    hits = 0
    n_sets = 80
    for i in range(n_sets):
        x = rng.normal(size=(20, *mask.shape))
        red = np.r_[np.ones(10, bool), np.zeros(10, bool)]
        hits += bool(voxelwise_ttest(x, red, mask, n_perm=199, seed=i, alpha=0.05).significant.any())
    # nominal 5 %: 4 of 80 expected; 12 or more has probability < 0.5 %
    assert hits < 12, hits


def test_planted_effect_outside_the_box_is_a_cluster_inside_not():
    rng = np.random.default_rng(7)
    x, red = _data(rng, n_red=20, n_nor=20)
    x[:20, 0:3, 0:3, 0:3] -= 0.2  # "extrastriatal" planted reduction (t ~ 6)
    x[:20, 5:8, 5:8, 3:6] -= 0.3  # the "striatum": inside the box
    mask = np.ones(SHAPE, bool)
    box = np.zeros(SHAPE, bool)
    box[4:9, 4:9, 2:7] = True
    res = voxelwise_ttest(x, red, mask, n_perm=500, seed=0)
    grid = _grid()
    labels = comparator_clusters(res, mask & ~box, grid, connectivity=26, min_cluster_ml=0.0)
    assert labels[1, 1, 1] == 1  # the planted block is the largest cluster
    assert (labels[box] == 0).all()
    assert res.significant[6, 6, 4]  # the box's own difference is significant, but no cluster outside
    t_in_cluster = res.t[labels == 1]
    assert (t_in_cluster < 0).all()


def test_same_seed_same_result_and_bad_input():
    rng = np.random.default_rng(11)
    x, red = _data(rng)
    mask = np.ones(SHAPE, bool)
    a = voxelwise_ttest(x, red, mask, n_perm=100, seed=4)
    b = voxelwise_ttest(x, red, mask, n_perm=100, seed=4)
    np.testing.assert_array_equal(a.h0_max_t, b.h0_max_t)
    assert a.threshold == b.threshold
    with pytest.raises(ValueError, match="at least 2 images per group"):
        voxelwise_ttest(x[:13], red[:13], mask, n_perm=100)
    with pytest.raises(ValueError, match="group labels"):
        voxelwise_ttest(x, red[:-1], mask, n_perm=100)
    bad = x.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        voxelwise_ttest(bad, red, mask, n_perm=100)


def test_distances_and_the_side_by_side_table():
    import pandas as pd

    from datxai.group.voxelwise import distances_mm, methods_table, side_by_side

    target = np.zeros(SHAPE, bool)
    target[0:2, 0:2, 0:2] = True
    lab = np.zeros(SHAPE, np.int32)
    lab[5, 1, 1] = 1  # 4 voxels from the nearest target voxel (x = 1): 16 mm at 4 mm voxels
    lab[2, 0, 0] = 2  # face neighbour of the target: 4 mm
    lab[1, 1, 1] = 3  # inside: 0
    d = distances_mm(lab, target, 4.0)
    assert d == {1: 16.0, 2: 4.0, 3: 0.0}
    assert np.isnan(distances_mm(lab, np.zeros(SHAPE, bool), 4.0)[1])
    table = pd.DataFrame({"cluster": [1, 2], "label": ["Insular_Cortex", "Temporal_Pole"], "side": ["I", "C"],
                          "volume_ml": [0.064, 0.064], "peak_heat": [-5.0, -6.0], "peak_x": [0, 0], "peak_y": [0, 0],
                          "peak_z": [0, 0]})
    empty = table.iloc[:0]
    long = methods_table({"lrp_nostriatum": table, "voxelwise_test": empty}, {"lrp_nostriatum": lab,
                                                                               "voxelwise_test": np.zeros_like(lab)},
                         target, target, 4.0)
    assert list(long["dist_striatum_mm"]) == [16.0, 4.0] and list(long["frac_in_box"]) == [0.0, 0.0]
    wide = side_by_side(long, methods=["lrp_nostriatum", "voxelwise_test"])
    assert list(wide.columns[:4]) == ["label", "side", "lrp_nostriatum", "voxelwise_test"]
    assert (wide["voxelwise_test"] == "").all() and (wide["n_methods"] == 1).all()
    assert wide.loc[wide.label == "Insular_Cortex", "lrp_nostriatum"].item() == "c1 0.1 ml"
