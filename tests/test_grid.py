import numpy as np
import pytest

from datxai.grid import Grid, average_to_grid, resample_to_grid


def test_grid_is_symmetric_about_x0_and_affine_matches_axes():
    g = Grid((7, 8, 9), 2.0, (0.0, -10.0, 4.0))
    x = g.axis_mm(0)
    np.testing.assert_allclose(x, -x[::-1])  # flip of axis 0 = mirror at x = 0
    # the affine maps index (i, j, k) to the same mm as axis_mm
    ijk = np.array([[0, 0, 0], [6, 7, 8], [3, 2, 5]])
    mm = ijk @ g.affine[:3, :3].T + g.affine[:3, 3]
    for ax in range(3):
        np.testing.assert_allclose(mm[:, ax], g.axis_mm(ax)[ijk[:, ax]])
    np.testing.assert_allclose(g.mm_to_index(mm), ijk, atol=1e-12)
    assert np.mean(g.axis_mm(1)) == pytest.approx(-10.0)
    assert g.voxel_ml == pytest.approx(0.008)


def test_grid_rejects_off_centre_x_and_bad_shapes():
    with pytest.raises(ValueError, match="center_mm\\[0\\]"):
        Grid((7, 8, 9), 2.0, (1.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="shape"):
        Grid((7, 8), 2.0)
    with pytest.raises(ValueError, match="voxel_mm"):
        Grid((7, 8, 9), 0.0)


def test_box_slices_selects_voxel_centres_inside_the_box():
    g = Grid((7, 8, 9), 2.0, (0.0, 0.0, 0.0))
    sl = g.box_slices([[-2, 2], [-3, 3], [0, 8]])
    assert [s.stop - s.start for s in sl] == [3, 4, 5]  # y centres -3, -1, 1, 3
    assert g.axis_mm(0)[sl[0]].tolist() == [-2.0, 0.0, 2.0]
    with pytest.raises(ValueError, match="does not overlap"):
        g.box_slices([[100, 120], [0, 1], [0, 1]])


def test_average_to_grid_equals_block_mean_for_aligned_integer_factor(rng):
    # 1 mm source, 2 mm target whose voxels cover exactly 2x2x2 source voxels
    src = rng.random((14, 16, 18)).astype(np.float32)
    src_aff = np.diag([1.0, 1.0, 1.0, 1.0])
    src_aff[:3, 3] = [-6.5, -7.5, -8.5]  # centres at -6.5 .. 6.5 etc.
    g = Grid((7, 8, 9), 2.0, (0.0, 0.0, 0.0))
    out = average_to_grid(src, src_aff, g)
    block = src.reshape(7, 2, 8, 2, 9, 2).mean(axis=(1, 3, 5))
    np.testing.assert_allclose(out, block, rtol=1e-5)  # float32 sums


def test_average_to_grid_conserves_mass_and_handles_flipped_axes(rng):
    src = np.zeros((40, 44, 38), np.float32)
    src[5:15, 18:26, 12:22] = 1.0  # a block off the midline (x = +10 mm), inside both grids
    aff = np.diag([-1.0, 1.0, 1.0, 1.0])  # LAS storage like the atlases
    aff[:3, 3] = [19.5, -21.5, -18.5]
    g = Grid((13, 15, 13), 3.0, (0.0, 0.0, 0.0))
    out = average_to_grid(src, aff, g)
    # mass (value x volume) is conserved up to float32 rounding
    assert out.sum() * 27.0 == pytest.approx(src.sum() * 1.0, rel=1e-5)
    # the LAS source must not come out mirrored: centre of mass in mm is preserved
    com = np.array([(g.coords_mm()[a] * out).sum() / out.sum() for a in range(3)])
    ijk = np.argwhere(src > 0).mean(axis=0)
    expected = aff[:3, :3] @ ijk + aff[:3, 3]
    assert expected[0] == pytest.approx(10.0)
    # box sampling onto 3 mm voxels moves the centroid by a fraction of a voxel;
    # a mirrored result would be off by 20 mm in x
    np.testing.assert_allclose(com, expected, atol=0.25)


def test_resample_to_grid_identity_and_shift():
    g = Grid((7, 8, 9), 2.0, (0.0, 0.0, 0.0))
    data = np.arange(7 * 8 * 9, dtype=np.float32).reshape(7, 8, 9)
    np.testing.assert_allclose(resample_to_grid(data, g.affine, g), data, rtol=1e-6)
    shifted = g.affine.copy()
    shifted[0, 3] += 2.0  # source moved +1 voxel in x
    out = resample_to_grid(data, shifted, g)
    np.testing.assert_allclose(out[1:], data[:-1], rtol=1e-6)
