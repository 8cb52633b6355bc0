"""Hottest-voxels SBR, ROIs and mirroring on synthetic images with known striatal values."""

import numpy as np
import pytest

from datxai.grid import Grid
from datxai.preprocess import lateralise, mirror, scale_and_quantify
from datxai.preprocess.sbr import hottest_mean, n_hottest, striatal_rois, striatal_sbr

# 4 mm grid, non-cubic; x = -16 .. 16 (index 4 is the midline x = 0)
GRID = Grid((9, 10, 7), 4.0, (0.0, -18.0, 11.0))


class FakeAtlas:
    """Block 'atlas' symmetric about x = 0: putamen cores at x = -/+12 mm, caudate at x = -/+4 mm."""

    def __init__(self, grid=GRID):
        self.grid = grid
        self.cores = {}
        for side, (ip, ic) in {"L": (1, 3), "R": (7, 5)}.items():
            put = np.zeros(grid.shape, np.float32)
            put[ip, 4:6, 3:5] = 1.0
            cau = np.zeros(grid.shape, np.float32)
            cau[ic, 6:8, 4:6] = 1.0
            self.cores[("Putamen", side)] = put
            self.cores[("Caudate", side)] = cau
        striat = np.any([c > 0 for c in self.cores.values()], axis=0)
        from scipy.ndimage import binary_dilation

        self.reference_mask = ~binary_dilation(striat, iterations=2)

    def prob(self, base, side=None):
        if side is None:
            return self.cores[(base, "L")] + self.cores[(base, "R")]
        return self.cores[(base, side)]


def synthetic_image(rng, values):
    """Background uniform in [1.5, 2.5]; each core gets its own (known, higher) voxel values."""
    atlas = FakeAtlas()
    img = rng.uniform(1.5, 2.5, GRID.shape)
    for key, v in values.items():
        core = atlas.cores[key] > 0
        img[core] = v + np.linspace(0, 0.3, core.sum())  # non-uniform cores: the hottest are the highest
    return atlas, img.astype(np.float32)


def test_n_hottest():
    assert n_hottest(4.0, 0.008) == 500  # paper: 4 ml of 2 mm voxels
    assert n_hottest(4.0, 0.216) == 19  # demo grid: 18.5 -> 19
    assert n_hottest(0.01, 0.216) == 1  # at least one voxel
    with pytest.raises(ValueError):
        n_hottest(0, 0.1)


def test_hottest_mean_against_sorting(rng):
    img = rng.random((7, 8, 9))
    roi = rng.random(img.shape) < 0.3
    ref = np.sort(img[roi])[::-1]
    for n in (1, 5, 17):
        assert hottest_mean(img, roi, n) == pytest.approx(ref[:n].mean(), rel=1e-12)
    assert hottest_mean(img, roi, 10**6) == pytest.approx(ref.mean(), rel=1e-12)  # fewer voxels than n


def test_rois_are_hemispheric_disjoint_and_dilated_by_the_margin():
    atlas = FakeAtlas()
    rois = striatal_rois(atlas, margin_mm=4.0)
    x = GRID.coords_mm()[0]
    for (s, side), roi in rois.items():
        assert np.all(roi[atlas.cores[(s, side)] > 0])  # contains its core
        assert np.all(x[roi] < 0) if side == "L" else np.all(x[roi] > 0)  # midline excluded
    assert not (rois[("Putamen", "L")] & rois[("Caudate", "L")]).any()
    # a 4 mm margin on a 4 mm grid adds the 6 face neighbours, not the diagonals (5.7 mm)
    put = rois[("Putamen", "L")]
    assert put[0, 4, 3] and put[1, 3, 3] and not put[0, 3, 3]
    # a large margin: the ROIs would overlap; shared voxels go to the nearer core
    big = striatal_rois(atlas, margin_mm=12.0)
    assert not (big[("Putamen", "L")] & big[("Caudate", "L")]).any()
    assert big[("Putamen", "L")][2, 5, 3]  # 4 mm from the putamen core, 6.9 mm from the caudate core
    assert big[("Caudate", "L")][2, 6, 4]  # 5.7 mm from the putamen core, 4 mm from the caudate core
    assert big[("Putamen", "L")][2, 5, 5]  # 5.7 mm from both: tie, equal probability (0) -> putamen


def test_sbr_of_known_striatal_values_is_exact(rng):
    vals = {("Putamen", "L"): 4.0, ("Putamen", "R"): 6.0, ("Caudate", "L"): 5.0, ("Caudate", "R"): 5.5}
    atlas, img = synthetic_image(rng, vals)
    ref = float(np.percentile(img[atlas.reference_mask].astype(np.float64), 75))
    n = 2  # the 2 hottest of each 4-voxel core
    sbr = striatal_sbr(img.astype(np.float64) / ref, striatal_rois(atlas, 4.0), n)
    for (s, side), v in vals.items():
        core = np.sort(img[atlas.cores[(s, side)] > 0].astype(np.float64))[::-1]
        expected = core[:n].mean() / ref - 1
        # float64 throughout here; only summation order differs
        assert sbr[f"{s.lower()}_{side}"] == pytest.approx(expected, rel=1e-12)
    # the same through the public entry point (scaled image is float32: rel 1e-6)
    out, rec = scale_and_quantify(img, atlas, 75, margin_mm=4.0, hottest_ml=n * GRID.voxel_ml)
    assert rec["reference_p75"] == pytest.approx(ref, rel=1e-12)
    assert rec["n_hottest"] == n
    assert rec["sbr_putamen_L"] == pytest.approx(sbr["putamen_L"], rel=1e-6)
    assert rec["sbr_putamen_ipsi"] == pytest.approx(sbr["putamen_L"], rel=1e-6)  # left is lower: no flip
    assert rec["sbr_caudate_contra"] == pytest.approx(sbr["caudate_R"], rel=1e-6)
    assert rec["mirrored"] == "no" and rec["lower_putamen_side"] == "L"
    np.testing.assert_allclose(out, img / ref, rtol=1e-6)


def test_mirroring_puts_the_lower_putamen_left_and_is_an_involution(rng):
    vals = {("Putamen", "L"): 6.0, ("Putamen", "R"): 3.5, ("Caudate", "L"): 5.0, ("Caudate", "R"): 4.5}
    atlas, img = synthetic_image(rng, vals)
    out, rec = scale_and_quantify(img, atlas, 75, margin_mm=4.0, hottest_ml=2 * GRID.voxel_ml)
    assert rec["mirrored"] == "yes" and rec["lower_putamen_side"] == "R"
    assert rec["sbr_putamen_ipsi"] == rec["sbr_putamen_R"] < rec["sbr_putamen_contra"] == rec["sbr_putamen_L"]
    assert rec["sbr_caudate_ipsi"] == rec["sbr_caudate_R"]  # the caudate follows the putamen's side
    # the image's left now holds the right putamen's values (x -> -x)
    np.testing.assert_allclose(out[1], img[7] / rec["reference_p75"], rtol=1e-6)
    # quantifying the output again (symmetric atlas): no flip, same I/C values, reference 1
    out2, rec2 = scale_and_quantify(out, atlas, 75, margin_mm=4.0, hottest_ml=2 * GRID.voxel_ml)
    assert rec2["mirrored"] == "no" and rec2["reference_p75"] == pytest.approx(1.0, rel=1e-6)
    for k in ("sbr_putamen_ipsi", "sbr_putamen_contra", "sbr_caudate_ipsi", "sbr_caudate_contra"):
        assert rec2[k] == pytest.approx(rec[k], abs=1e-5)  # float32 rounding of a ~1-5 ratio
    a = rng.random((9, 10, 7))
    np.testing.assert_array_equal(mirror(mirror(a)), a)
    assert not np.array_equal(mirror(a), a)
    # x -> -x on the symmetric grid: voxel i maps to nx - 1 - i
    np.testing.assert_array_equal(mirror(a)[2], a[6])


def test_lateralise_tie_keeps_the_image():
    img = np.arange(9 * 10 * 7, dtype=float).reshape(9, 10, 7)
    out, rec = lateralise(img, {"putamen_L": 2.0, "putamen_R": 2.0, "caudate_L": 1.0, "caudate_R": 3.0})
    assert rec["mirrored"] == "no"
    np.testing.assert_array_equal(out, img)
    out[0, 0, 0] = -1
    assert img[0, 0, 0] == 0  # a copy, not a view


def test_real_atlas_sbr_on_atlas_cores(small_grid):
    """With the packaged atlas: constant reference 1, putamen/caudate cores at known values."""
    from datxai.atlas import atlas_on_grid

    atlas = atlas_on_grid(small_grid)
    img = np.where(atlas.brain_mask, 1.0, 0.0).astype(np.float32)
    truth = {("Putamen", "L"): 1.2, ("Putamen", "R"): 2.4, ("Caudate", "L"): 1.8, ("Caudate", "R"): 2.0}
    cores = {}
    for (s, side), sbr in truth.items():
        cores[(s, side)] = atlas.prob(s, side) >= 0.5
        img[cores[(s, side)]] = 1.0 + sbr
    n = min(int(c.sum()) for c in cores.values())
    assert n >= 2
    out, rec = scale_and_quantify(img, atlas, 75, margin_mm=8.0, hottest_ml=n * small_grid.voxel_ml)
    assert rec["reference_p75"] == pytest.approx(1.0)  # reference region is all ones
    # exact: the n hottest voxels are all inside the core (values 1 + sbr > 1 elsewhere)
    assert rec["sbr_putamen_ipsi"] == pytest.approx(1.2, rel=1e-6)
    assert rec["sbr_putamen_contra"] == pytest.approx(2.4, rel=1e-6)
    assert rec["sbr_caudate_ipsi"] == pytest.approx(1.8, rel=1e-6)
    assert rec["sbr_caudate_contra"] == pytest.approx(2.0, rel=1e-6)
