"""The forward projector against analytic references (no atlas; small non-cubic grids)."""

import numpy as np
import pytest

from datxai import geometry
from datxai.grid import Grid
from datxai.simulate.camera import Camera, FWHM_PER_SIGMA, add_noise, project


def _supersampled_cylinder(grid, radius, half_height, n_sub=4):
    """Partial-volume fraction of a z-cylinder in each voxel (n_sub^2 samples in x-y)."""
    x, y, z = grid.coords_mm()
    v = grid.voxel_mm
    off = (np.arange(n_sub) + 0.5) / n_sub - 0.5
    frac = np.zeros(grid.shape)
    for dx in off:
        for dy in off:
            frac += ((x + dx * v) ** 2 + (y + dy * v) ** 2 <= radius**2)
    return frac / n_sub**2 * (np.abs(z) <= half_height)


def _blob(grid, centre_mm, sigma_mm):
    x, y, z = grid.coords_mm()
    c = np.asarray(centre_mm)
    return np.exp(-((x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2) / (2 * sigma_mm**2))


def _ideal(**kw):
    args = dict(n_bins=48, bin_mm=4.0, n_views=12, n_heads=2, rotation="CW", collimator_fwhm_mm=0.0,
                collimator_fwhm_slope=0.0, radius_mm=150.0, mu_per_cm=0.0)
    args.update(kw)
    return Camera(**args)


def test_uniform_cylinder_gives_chord_lengths():
    grid = Grid((45, 47, 21), 2.0, (0.0, 0.0, 0.0))
    a = 40.0
    cyl = _supersampled_cylinder(grid, a, 12.0)
    cam = _ideal()
    p = project(cyl, grid, cam, blur=False)
    s = geometry.bin_positions(cam.n_bins, cam.bin_mm)
    chord = 2 * np.sqrt(np.clip(a**2 - s**2, 0, None))
    row = cam.n_rows // 2  # z = -2 mm: inside the cylinder
    inner = np.abs(s) <= a - 2 * cam.bin_mm
    # the rim is resolved to a fraction of a bin (depth sampled every 4 mm, interpolated twice):
    # two bins inside it each chord within 3 %, on average within 0.25 bin (1 mm)
    for frame in p:
        np.testing.assert_allclose(frame[row, inner], chord[inner], rtol=0.03)
        assert np.abs(frame[row, inner] - chord[inner]).mean() < 0.25 * cam.bin_mm
    # outside the object nothing is projected
    assert np.all(p[:, :, np.abs(s) > a + 2 * cam.bin_mm] == 0)


def test_point_source_lands_where_geometry_says():
    grid = Grid((41, 44, 39), 2.0, (0.0, -4.0, 6.0))
    m = np.array([12.0, -20.0, 18.0])
    pose = geometry.rigid_affine([6.0, -8.0, 12.0], [10.0, -6.0, 4.0], 1.05)
    cam = _ideal(n_views=24, rotation="CW")
    p = project(_blob(grid, m, 2.5), grid, cam, pose=pose, blur=False)
    n = pose @ np.r_[m, 1.0]
    s_pos = geometry.bin_positions(cam.n_bins, cam.bin_mm)
    z_pos = geometry.row_positions(cam.n_rows, cam.bin_mm)
    for frame, theta in zip(p, cam.angles_deg()):
        t = np.deg2rad(theta)
        s_centroid = (frame.sum(axis=0) * s_pos).sum() / frame.sum()
        z_centroid = (frame.sum(axis=1) * z_pos).sum() / frame.sum()
        # a symmetric blob sampled trilinearly: centroid bias well below a tenth of a 4 mm bin
        # DICOM: bins run along u(theta) = (cos, -sin) in RAS (0 deg: detector behind the patient)
        assert s_centroid == pytest.approx(n[0] * np.cos(t) - n[1] * np.sin(t), abs=0.3)
        assert z_centroid == pytest.approx(n[2], abs=0.3)


def test_opposite_views_mirror_only_without_attenuation():
    grid = Grid((31, 36, 17), 3.0, (0.0, 0.0, 0.0))
    obj = _blob(grid, (10, 5, 0), 6.0) + 0.5 * _blob(grid, (-15, -10, 3), 4.0)
    head = _supersampled_cylinder(grid, 42.0, 30.0)
    cam = _ideal(n_views=8, n_heads=1, rotation="CC", collimator_fwhm_mm=8.0, collimator_fwhm_slope=0.0)
    ang = cam.angles_deg()
    p = project(obj, grid, cam, blur=True)
    for i in range(4):
        j = int(np.nonzero(np.isclose(ang, (ang[i] + 180) % 360))[0][0])
        # identical sample points at theta and theta + 180 (bins reversed): float32 round-off only
        np.testing.assert_allclose(p[j][:, ::-1], p[i], rtol=1e-4, atol=1e-6 * p.max())
    pa = project(obj, grid, cam.__class__(**{**cam.__dict__, "mu_per_cm": 0.15}), head=head)
    assert not np.allclose(pa[4][:, ::-1], pa[0], rtol=0.02)


def test_attenuation_of_a_point_source_is_exp_minus_mu_d():
    grid = Grid((67, 66, 15), 2.0, (0.0, 0.0, 0.0))
    a, y0, mu_cm = 60.0, 20.0, 0.11
    head = _supersampled_cylinder(grid, a, 40.0, n_sub=8)
    src = _blob(grid, (0.0, y0, 0.0), 1.5)
    cam = _ideal(n_bins=72, bin_mm=2.0, n_views=4, n_heads=1, rotation="CC", mu_per_cm=mu_cm)
    assert np.allclose(cam.angles_deg(), [0, 90, 180, 270])
    free = project(src, grid, cam, blur=False).sum(axis=(1, 2))
    att = project(src, grid, cam, head=head, blur=False).sum(axis=(1, 2))
    # photons leave towards d(theta) = (-sin, -cos) (DICOM): posterior (-y) at 0, the patient's left
    # (-x) at 90, anterior (+y) at 180, right (+x) at 270; the source sits 20 mm anterior
    depth = np.array([a + y0, np.sqrt(a**2 - y0**2), a - y0, np.sqrt(a**2 - y0**2)])
    # the rim of the cylinder is resolved to ~0.5 mm -> mu * 0.5 mm = 0.6 % ; the 1.5 mm blob adds < 0.1 %
    np.testing.assert_allclose(att / free, np.exp(-mu_cm / 10 * depth), rtol=0.015)


@pytest.mark.parametrize("blur", [False, True])
def test_total_activity_is_conserved_without_attenuation(blur):
    grid = Grid((35, 38, 29), 3.0, (0.0, -6.0, 3.0))
    obj = _blob(grid, (8, -15, 10), 7.0) + _blob(grid, (-20, 0, -5), 5.0)
    cam = _ideal(n_bins=40, bin_mm=4.5, n_views=10, collimator_fwhm_mm=10.0, collimator_fwhm_slope=0.04)
    p = project(obj, grid, cam, blur=blur)
    total = obj.sum() * grid.voxel_mm**3
    # each frame integrates the whole object: sum(p) * bin area = activity x volume; trilinear
    # sampling of a smooth (sigma >= 1.7 voxels) object integrates to within 1 %
    np.testing.assert_allclose(p.sum(axis=(1, 2)) * cam.bin_mm**2, total, rtol=0.01)


def test_collimator_blur_grows_with_distance_as_configured():
    grid = Grid((31, 73, 23), 1.5, (0.0, 0.0, 0.0))  # y covers +-54 mm
    y0 = 40.0
    src = _blob(grid, (0.0, y0, 0.0), 1.0)
    cam = _ideal(n_bins=64, bin_mm=2.0, n_views=2, n_heads=2, rotation="CW",
                 collimator_fwhm_mm=10.0, collimator_fwhm_slope=0.04, radius_mm=150.0)
    p = project(src, grid, cam)  # view 0 at 0 deg (detector posterior, 190 mm away), view 1 at 180 deg (110 mm)
    s = geometry.bin_positions(cam.n_bins, cam.bin_mm)
    z = geometry.row_positions(cam.n_rows, cam.bin_mm)

    def variances(frame):
        ps, pz = frame.sum(axis=0), frame.sum(axis=1)
        vs = (ps * s**2).sum() / ps.sum() - ((ps * s).sum() / ps.sum()) ** 2
        vz = (pz * z**2).sum() / pz.sum() - ((pz * z).sum() / pz.sum()) ** 2
        return np.array([vs, vz])

    sig = cam.fwhm_mm(np.array([150.0 - y0, 150.0 + y0])) / FWHM_PER_SIGMA
    np.testing.assert_allclose(cam.fwhm_mm([110.0, 190.0]), [10.4, 13.6])
    v0, v1 = variances(p[1]), variances(p[0])  # near (110 mm), far (190 mm)
    # the blob, the anti-alias filter and the bin width add the same variance to both views: the
    # difference is the collimator's alone (2 % covers the tails cut at the detector edge)
    np.testing.assert_allclose(v1 - v0, sig[1] ** 2 - sig[0] ** 2, rtol=0.02)
    # absolutely: collimator + blob (1 mm) + bin (h^2/12) + anti-alias ((h^2 - v^2)/12), 5 % for interpolation
    extra = 1.0 + cam.bin_mm**2 / 12 + (cam.bin_mm**2 - grid.voxel_mm**2) / 12
    np.testing.assert_allclose(v0, sig[0] ** 2 + extra, rtol=0.05)


def test_frame_angles_cover_the_circle_once():
    cam = Camera(n_views=60, n_heads=2, rotation="CW")
    ang = cam.angles_deg()
    assert ang.size == 60 and ang[0] == 0 and ang[30] == 180 and ang[1] == pytest.approx(354.0)
    np.testing.assert_allclose(np.sort(ang), np.arange(60) * 6.0)


def test_noise_is_seeded_and_scaled():
    exp = np.random.default_rng(1).uniform(0, 1, (6, 9, 8))
    a = add_noise(exp, 2e5, np.random.default_rng(7))
    b = add_noise(exp, 2e5, np.random.default_rng(7))
    c = add_noise(exp, 2e5, np.random.default_rng(8))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert abs(a.sum() - 2e5) < 5 * np.sqrt(2e5)  # Poisson total: 5 sigma


def test_bad_geometry_is_refused():
    with pytest.raises(ValueError, match="multiple of n_heads"):
        Camera(n_views=61, n_heads=2)
    with pytest.raises(ValueError, match="CW"):
        Camera(rotation="XX")
    grid = Grid((9, 10, 11), 4.0, (0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="empty"):
        project(np.zeros(grid.shape), grid, _ideal())
    with pytest.raises(ValueError, match="shape"):
        project(np.ones((9, 10, 12)), grid, _ideal())


def test_cached_view_operators_give_the_same_projection_as_a_cold_cache():
    """Rotation weights and blur matrices are cached across subjects; the frames must not depend on it."""
    from datxai.simulate import camera as cam_mod

    grid = Grid((30, 34, 28), 4.0, (0.0, -6.0, 4.0))
    cam = Camera(n_bins=40, bin_mm=5.0, n_views=16, n_heads=2, mu_per_cm=0.11)
    head = (_blob(grid, (0, 0, 0), 30.0) > 0.2).astype(np.float32)
    act = _blob(grid, (12.0, -10.0, 6.0), 8.0) + 0.3 * head
    pose = np.eye(4)
    pose[:3, 3] = (6.0, -4.0, 3.0)
    cam_mod._rotation_weights.cache_clear()
    cam_mod._blur_operators.cache_clear()
    cold = project(act, grid, cam, pose=pose, head=head)
    warm = project(act, grid, cam, pose=pose, head=head)
    assert cam_mod._rotation_weights.cache_info().hits == cam.n_views
    assert cam_mod._blur_operators.cache_info().hits == 1
    np.testing.assert_array_equal(cold, warm)
    idx, w = cam_mod._rotation_weights(0.0, cam.n_bins, cam.bin_mm, 2, 30)
    assert not idx.flags.writeable and not w.flags.writeable
