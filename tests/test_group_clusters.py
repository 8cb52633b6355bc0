"""Cluster threshold, labelling and validation on synthetic heat maps with known blobs."""

import numpy as np
import pytest

from datxai.grid import Grid
from datxai.group.clusters import (
    allowed_mask,
    compare_with_truth,
    describe_clusters,
    find_clusters,
    heat_threshold,
    planted_from_truth,
)

GRID = Grid((20, 22, 18), 4.0, (0.0, -18.0, 11.0))  # non-cubic; even nx: no voxel on x = 0
NAMES = ("Left_Insular_Cortex", "Left_Frontal_Operculum_Cortex", "Right_Amygdala", "Brain-Stem")
BOX = (slice(7, 13), slice(9, 14), slice(7, 11))  # "striatum box" (voxel slices), straddles the midline


def _scene(seed=0):
    rng = np.random.default_rng(seed)
    heat = -np.abs(rng.normal(0, 0.05, GRID.shape))  # negative background: positive heat only = the blobs
    brain = np.zeros(GRID.shape, bool)
    brain[1:-1, 1:-1, 1:-1] = True
    box = np.zeros(GRID.shape, bool)
    box[BOX] = True
    lab = np.zeros(GRID.shape, np.int16)
    # blob A: 3x3x3 on the I side (x < 0), graded, peak at its centre
    heat[2:5, 3:6, 3:6] = 1.0
    heat[3, 4, 4] = 2.0
    lab[2:5, 3:6, 3:6] = 1
    lab[2:5, 3:6, 5] = 2  # one third: frontal operculum
    # blob B: 2x3x4 on the C side
    heat[15:17, 14:17, 10:14] = 0.8
    lab[15:17, 14:17, 10:14] = 3
    # blob C: 2 voxels = 0.128 ml (< 1 ml, dropped)
    heat[12, 2:4, 15] = 0.9
    # inside the striatum box: huge heat that must be ignored
    heat[BOX] = 50.0
    return heat, brain, box, lab


def test_blobs_sizes_sides_peaks_labels():
    heat, brain, box, lab = _scene()
    allowed = allowed_mask(brain, box)
    labels, thr = find_clusters(heat, allowed, GRID, percentile=95, connectivity=26, min_cluster_ml=1.0)
    assert labels.max() == 2  # C dropped, box ignored
    assert not labels[box].any()
    table = describe_clusters(labels, heat, GRID, lab, NAMES, threshold=thr)
    a, b = table.iloc[0], table.iloc[1]
    assert (a.cluster, a.n_voxels, b.cluster, b.n_voxels) == (1, 27, 2, 24)  # ordered by size
    assert a.volume_ml == pytest.approx(27 * 0.064) and b.volume_ml == pytest.approx(24 * 0.064)
    assert (a.side, b.side) == ("I", "C")
    xyz = GRID.coords_mm()
    assert (a.peak_x, a.peak_y, a.peak_z) == tuple(xyz[:, 3, 4, 4]) and a.peak_heat == pytest.approx(2.0)
    # heat-weighted centre of mass by hand: weights 1 except the centre (2), symmetric cube -> the centre
    np.testing.assert_allclose([a.com_x, a.com_y, a.com_z], xyz[:, 3, 4, 4], atol=1e-9)
    np.testing.assert_allclose([b.com_x, b.com_y, b.com_z], xyz[:, 15:17, 14:17, 10:14].reshape(3, -1).mean(axis=1),
                               atol=1e-9)  # uniform heat: the geometric centre (mm; rounding only)
    assert a.label == "Insular_Cortex"
    assert a.labels == "Insular_Cortex[I]:0.67; Frontal_Operculum_Cortex[I]:0.33"
    assert b.label == "Amygdala" and b.labels == "Amygdala[C]:1.00"


def test_threshold_only_from_allowed_voxels():
    heat, brain, box, _ = _scene()
    allowed = allowed_mask(brain, box)
    thr = heat_threshold(heat, allowed, 95)
    assert thr == pytest.approx(np.percentile(heat[brain & ~box], 95))
    for v in (-1e6, 0.0, 1e6):  # whatever the box holds, the threshold is the same
        h2 = heat.copy()
        h2[box] = v
        assert heat_threshold(h2, allowed, 95) == thr
    # analytic: allowed values a permutation of linspace(0, 1, n) -> 95th percentile = 0.95
    rng = np.random.default_rng(1)
    h = np.full(GRID.shape, 7.0)
    h[allowed] = rng.permutation(np.linspace(0, 1, int(allowed.sum())))
    assert heat_threshold(h, allowed, 95) == pytest.approx(0.95)
    labels, _ = find_clusters(h, allowed, GRID, percentile=95, min_cluster_ml=0)
    assert (labels > 0).sum() == (h[allowed] > 0.95).sum()  # every supra-threshold voxel, nothing else


def test_connectivity_and_min_size():
    heat = -np.ones(GRID.shape)
    heat[4:7, 4:7, 4:7] = 1.0
    heat[7:10, 7:10, 7:10] = 1.0  # touches the first cube at a single corner
    allowed = np.ones(GRID.shape, bool)
    l26, _ = find_clusters(heat, allowed, GRID, percentile=50, connectivity=26, min_cluster_ml=0)
    l6, _ = find_clusters(heat, allowed, GRID, percentile=50, connectivity=6, min_cluster_ml=0)
    assert l26.max() == 1 and l6.max() == 2
    big, _ = find_clusters(heat, allowed, GRID, percentile=50, connectivity=6, min_cluster_ml=27 * 0.064 + 1e-6)
    assert big.max() == 0
    with pytest.raises(ValueError, match="connectivity"):
        find_clusters(heat, allowed, GRID, connectivity=8)


def test_midline_cluster_is_m():
    heat = -np.ones(GRID.shape)
    heat[8:12, 2:5, 2:5] = 1.0  # two voxels each side of x = 0
    lab = np.zeros(GRID.shape, np.int16)
    lab[8:12, 2:5, 2:5] = 4
    labels, thr = find_clusters(heat, np.ones(GRID.shape, bool), GRID, percentile=50, min_cluster_ml=0)
    t = describe_clusters(labels, heat, GRID, lab, NAMES, thr)
    assert t.iloc[0].side == "M" and t.iloc[0].frac_ipsi == pytest.approx(0.5)
    assert t.iloc[0].labels == "Brain-Stem[C]:0.50; Brain-Stem[I]:0.50"


def test_compare_with_truth():
    heat, brain, box, lab = _scene()
    labels, thr = find_clusters(heat, allowed_mask(brain, box), GRID)
    table = describe_clusters(labels, heat, GRID, lab, NAMES, thr)
    records = [
        {"subject": "sub-0001", "planted": [{"region": "Insular_Cortex", "side": "R", "relation": "ipsi"},
                                            {"region": "Insular_Cortex", "side": "L", "relation": "contra"}]},
        {"subject": "sub-0002", "planted": [{"region": "Insular_Cortex", "side": "L", "relation": "ipsi"}]},
        {"subject": "sub-0003", "planted": []},
    ]
    planted = planted_from_truth(records)
    assert planted == [("Insular_Cortex", "C", 1), ("Insular_Cortex", "I", 2)]
    v = compare_with_truth(table, planted)
    assert v.set_index(["planted_region", "side"]).loc[("Insular_Cortex", "I"), "hit"] == "yes"
    assert v.set_index(["planted_region", "side"]).loc[("Insular_Cortex", "C"), "hit"] == "no"
    spurious = v[v.hit == "spurious"]
    assert spurious.cluster.tolist() == ["2"]  # the amygdala blob was not planted
    table.loc[table.cluster == 2, "label"] = "Putamen"
    assert compare_with_truth(table, planted).query("cluster == '2'").hit.item() == "striatal"
    # a blob around the striatum whose most frequent named region is not striatal: its striatal
    # share (putamen + caudate, both sides) reaches min_share, so it is the disease, not spurious
    table.loc[table.cluster == 2, "label"] = "Amygdala"
    table.loc[table.cluster == 2, "labels"] = ("none[I]:0.40; Amygdala[C]:0.26; Thalamus[C]:0.12; Hippocampus[C]:0.10; "
                                               "Putamen[I]:0.05; Putamen[C]:0.04; Caudate[I]:0.03")
    assert compare_with_truth(table, planted, 0.10).query("cluster == '2'").hit.item() == "striatal"
    assert compare_with_truth(table, planted, 0.20).query("cluster == '2'").hit.item() == "spurious"
    with pytest.raises(ValueError, match=r"planted relation must be one of \['ipsi', 'contra'\]; got 'left'"):
        planted_from_truth([{"subject": "x", "planted": [{"region": "A", "relation": "left"}]}])


def test_clusters_may_grow_into_the_box_without_moving_the_threshold():
    """full setting: threshold from outside the box, clusters over the whole brain (S1's striatal clusters)."""
    heat, brain, box, lab = _scene()
    allowed = allowed_mask(brain, box)
    outside, thr_out = find_clusters(heat, allowed, GRID, min_cluster_ml=1.0)
    whole, thr_all = find_clusters(heat, allowed, GRID, min_cluster_ml=1.0, cluster_mask=brain)
    assert thr_out == thr_all
    assert outside.max() == 2 and whole.max() == 3
    assert (whole == 1).sum() == box.sum() and whole[box].min() == 1  # the box blob (120 voxels) is now cluster 1
    t = describe_clusters(whole, heat, GRID, lab, NAMES, thr_all)
    assert t.iloc[0].side == "M" and t.iloc[0].label == "none"


def test_heat_sign_positive_negative_both():
    """A positive and a negative blob on a weak background: each sign finds its own blob, ``both`` finds both
    as separate clusters (never one mixed cluster, even where they touch), thresholded on |heat|."""
    heat = np.full(GRID.shape, 0.01)
    heat[::2] = -0.01  # weak background of both signs
    heat[2:5, 3:6, 3:6] = 1.0  # positive blob, I side (27 voxels)
    heat[5:8, 3:6, 3:6] = -2.0  # negative blob touching it (27 voxels), stronger
    allowed = np.ones(GRID.shape, bool)
    thr_both = heat_threshold(heat, allowed, 95, sign="both")
    assert thr_both == pytest.approx(np.percentile(np.abs(heat), 95))
    assert heat_threshold(heat, allowed, 95, sign="negative") == pytest.approx(np.percentile(-heat, 95))
    pos, _ = find_clusters(heat, allowed, GRID, percentile=95, min_cluster_ml=0, sign="positive")
    neg, _ = find_clusters(heat, allowed, GRID, percentile=95, min_cluster_ml=0, sign="negative")
    both, thr = find_clusters(heat, allowed, GRID, percentile=95, min_cluster_ml=0, sign="both")
    assert pos.max() == 1 and (pos > 0).sum() == 27 and (heat[pos > 0] == 1.0).all()
    assert neg.max() == 1 and (neg > 0).sum() == 27 and (heat[neg > 0] == -2.0).all()
    assert both.max() == 2 and {(heat[both == c] > 0).all() or (heat[both == c] < 0).all() for c in (1, 2)} == {True}
    table = describe_clusters(both, heat, GRID, np.zeros(GRID.shape, np.int16), NAMES, threshold=thr)
    # equal size: the larger |peak| (the negative blob) comes first
    assert list(table["sign"]) == [-1, 1] and list(table["n_voxels"]) == [27, 27]
    assert table.iloc[0].peak_heat == pytest.approx(-2.0) and table.iloc[0].mean_heat == pytest.approx(-2.0)
    xyz = GRID.coords_mm()
    np.testing.assert_allclose(table.iloc[0][["com_x", "com_y", "com_z"]].astype(float),
                               xyz[:, 5:8, 3:6, 3:6].reshape(3, -1).mean(axis=1), atol=1e-9)
    with pytest.raises(ValueError, match="heat_sign"):
        find_clusters(heat, allowed, GRID, sign="absolute")
