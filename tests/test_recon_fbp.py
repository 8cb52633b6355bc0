"""FBP against skimage's iradon, analytic phantoms and invariants (datxai.recon.fbp)."""

import numpy as np
import pytest

from datxai.geometry import bin_positions, native_affine, radon_angles, row_positions
from datxai.recon.fbp import angle_weights, fbp, fourier_filter, frequency_scaling, padded_length, reconstruct_frames

iradon = pytest.importorskip("skimage.transform").iradon


def disc_sinogram(angles_deg, n_bins, bin_mm, radius_mm, centre_mm=(0.0, 0.0), value=1.0):
    """Analytic Radon transform of a uniform disc: 2 c sqrt(r^2 - (s - s0)^2), in value * mm."""
    t = np.deg2rad(np.asarray(angles_deg))[:, None]
    s0 = centre_mm[0] * np.cos(t) + centre_mm[1] * np.sin(t)
    s = bin_positions(n_bins, bin_mm)[None, :]
    return 2.0 * value * np.sqrt(np.clip(radius_mm**2 - (s - s0) ** 2, 0, None))


def fov_mask(m, n_bins, margin=1.0):
    c = np.arange(m) - (m - 1) / 2.0
    x, y = np.meshgrid(c, c, indexing="ij")
    return x**2 + y**2 <= (n_bins / 2.0 - margin) ** 2


def voxel_mm(m, bin_mm):
    c = (np.arange(m) - (m - 1) / 2.0) * bin_mm
    return np.meshgrid(c, c, indexing="ij")


@pytest.mark.parametrize("ours, theirs", [("ram-lak", "ramp"), ("shepp-logan", "shepp-logan"), ("cosine", "cosine")])
def test_matches_skimage_iradon(rng, ours, theirs):
    # odd n_bins: skimage's centre (n // 2) and ours ((n - 1) / 2) coincide; 360-degree
    # two-head-like angles with an offset; a (2, 3) batch of random sinograms.
    n_bins, n_views, bin_mm = 37, 50, 3.9
    theta = (np.arange(n_views) * 360.0 / n_views + 11.0) % 360.0
    sino = rng.random((2, 3, n_views, n_bins))
    out = fbp(sino, theta, bin_mm, ours, cutoff_cycles_per_cm=None)  # no cut-off: skimage has none
    assert out.shape == (2, 3, n_bins, n_bins) and out.dtype == np.float32
    fov = fov_mask(n_bins, n_bins)
    for idx in [(0, 0), (1, 2)]:
        # skimage wants (n_bins, n_angles) in value * pixel; its image is [row, col] with
        # col = +x and row = -y, so ours[i, j] = f(x_i, y_j) = ref[::-1, :].T
        ref = iradon((sino[idx] / bin_mm).T, theta, output_size=n_bins, filter_name=theirs, circle=False)
        ref = ref[::-1, :].T
        rel = np.abs(out[idx] - ref)[fov].max() / np.abs(ref[fov]).max()
        assert rel < 1e-3, rel  # identical filters; float32 back-projection gives ~1e-6


def test_filter_d_scaling_and_cutoff():
    n_bins = 45
    order = padded_length(n_bins)
    assert order == 128
    w = 2 * np.pi * np.arange(order // 2 + 1) / order
    ramp = fourier_filter(n_bins, "ram-lak", 1.0)
    # the band-limited ramp of Kak & Slaney approximates 2|f| = w / pi (within its DC fix)
    assert np.allclose(ramp[5:], w[5:] / np.pi, rtol=0.02)
    assert ramp[0] > 0  # no DC hole (eq. 61 removes the bias of a sampled |f|)
    for name in ("ram-lak", "shepp-logan", "hann", "hamming", "cosine"):
        for d in (1.0, 0.6):
            f = fourier_filter(n_bins, name, d)
            assert np.all(f[w > np.pi * d + 1e-12] == 0)
            ratio = f[1:][w[1:] <= np.pi * d] / ramp[1:][w[1:] <= np.pi * d]
            assert np.all(ratio <= 1 + 1e-12) and np.all(np.diff(ratio) <= 1e-12)  # a low-pass window
    # shepp-logan window is sinc(w / (2 d)): at the (stretched) Nyquist d * pi it is 2 / pi
    f = fourier_filter(n_bins, "shepp-logan", 0.5)
    k = order // 4  # w = pi / 2 = pi * d
    assert f[k] / ramp[k] == pytest.approx(2 / np.pi, rel=1e-9)
    # cycles/cm -> d: Nyquist of 3.9 mm bins is 1.282 cycles/cm; 4.5 mm bins cap at 1
    assert frequency_scaling(1.25, 3.9) == pytest.approx(1.25 / (1 / 0.78))
    assert frequency_scaling(1.25, 4.5) == 1.0
    assert frequency_scaling(None, 4.5) == 1.0


def test_angle_weights_uniform_and_folded():
    # uniform over 360 or over 180: pi / n each (MATLAB / skimage scaling)
    assert np.allclose(angle_weights(np.arange(60) * 6.0), np.pi / 60)
    assert np.allclose(angle_weights(np.arange(45) * 4.0), np.pi / 45)
    # odd count over 360 interleaves after folding
    assert np.allclose(angle_weights(np.arange(45) * 8.0), np.pi / 45)
    assert np.isclose(angle_weights([0, 10, 50, 90]).sum(), np.pi)


@pytest.mark.parametrize("filter_name, cutoff", [("ram-lak", None), ("shepp-logan", 1.25)])
def test_uniform_disc_reconstructs_to_its_value(filter_name, cutoff):
    # a disc of value c (per mm) gives line integrals in value * mm; the image must be ~c
    # 96 views >= pi / 2 * n_bins: no view aliasing inside the field of view
    n_bins, bin_mm, c, r = 48, 4.0, 3.5, 60.0
    theta = np.arange(96) * 360.0 / 96
    out = fbp(disc_sinogram(theta, n_bins, bin_mm, r, value=c), theta, bin_mm, filter_name, cutoff)
    x, y = voxel_mm(n_bins, bin_mm)
    inner = x**2 + y**2 <= (0.7 * r) ** 2
    outer = (x**2 + y**2 >= (1.3 * r) ** 2) & fov_mask(n_bins, n_bins, 2)
    # point-sampled edges give ripple (measured 0.2 % mean, 0.3 % max inside, 1.4 % outside):
    # mean within 1 %, each voxel within 2 %, background below 3 % of c
    assert np.mean(out[inner]) == pytest.approx(c, rel=0.01)
    assert np.abs(out[inner] / c - 1).max() < 0.02
    assert np.abs(out[outer]).max() < 0.03 * c


def test_off_centre_disc_lands_where_it_is():
    # orientation: axis 0 = x, axis 1 = y, as s = x cos(theta) + y sin(theta)
    n_bins, bin_mm = 41, 4.0
    theta = np.arange(90) * 4.0
    centre = (36.0, -20.0)
    out = fbp(disc_sinogram(theta, n_bins, bin_mm, 16.0, centre), theta, bin_mm, "ram-lak", None)
    x, y = voxel_mm(n_bins, bin_mm)
    w = np.clip(out, 0, None) * (out > 0.5 * out.max())
    assert (w * x).sum() / w.sum() == pytest.approx(centre[0], abs=0.5)
    assert (w * y).sum() / w.sum() == pytest.approx(centre[1], abs=0.5)


def test_centred_point_is_centred_and_symmetric():
    n_bins, bin_mm = 31, 3.0
    theta = np.arange(60) * 3.0  # closed under theta + 90 and 180 - theta
    sino = np.zeros((60, n_bins))
    sino[:, n_bins // 2] = 1.0  # a point at the centre of rotation: flat sinogram
    out = fbp(sino, theta, bin_mm, "shepp-logan", 1.25)
    assert np.unravel_index(np.argmax(out), out.shape) == (n_bins // 2, n_bins // 2)
    tol = 1e-5 * out.max()  # float32 summation order only
    assert np.abs(out - out[::-1, :]).max() < tol
    assert np.abs(out - out[:, ::-1]).max() < tol
    assert np.abs(out - out.T).max() < tol


def test_theta_plus_180_consistency(rng):
    # p(theta + 180, s) = p(theta, -s): the same data given at theta + 180 with bins reversed
    # reconstructs identically, and 360-degree data equals its 180-degree half
    n_bins, bin_mm = 29, 4.0
    theta = np.arange(36) * 5.0
    sino = rng.random((3, 36, n_bins))
    a = fbp(sino, theta, bin_mm)
    b = fbp(sino[..., ::-1], theta + 180.0, bin_mm)
    both = fbp(np.concatenate([sino, sino[..., ::-1]], axis=1), np.r_[theta, theta + 180.0], bin_mm)
    tol = 1e-5 * np.abs(a).max()
    assert np.abs(a - b).max() < tol
    assert np.abs(a - both).max() < tol


def test_linearity(rng):
    n_bins, bin_mm = 27, 4.5
    theta = np.arange(40) * 9.0
    s1, s2 = rng.random((2, 5, 40, n_bins))
    lhs = fbp(2.0 * s1 - 0.5 * s2, theta, bin_mm)
    rhs = 2.0 * fbp(s1, theta, bin_mm) - 0.5 * fbp(s2, theta, bin_mm)
    assert np.abs(lhs - rhs).max() < 1e-5 * np.abs(rhs).max()


def test_output_size_keeps_voxel_size_and_centre():
    # a larger output adds voxels of the same size around the same centre of rotation
    n_bins, bin_mm = 33, 4.0
    theta = np.arange(60) * 6.0
    sino = disc_sinogram(theta, n_bins, bin_mm, 12.0, (20.0, 8.0))
    small = fbp(sino, theta, bin_mm, "ram-lak", None)
    big = fbp(sino, theta, bin_mm, "ram-lak", None, output_size=40, circle=False)
    for img, m in ((small, 33), (big, 40)):
        x, y = voxel_mm(m, bin_mm)
        w = img * (img > 0.5 * img.max())
        assert (w * x).sum() / w.sum() == pytest.approx(20.0, abs=0.3)
        assert (w * y).sum() / w.sum() == pytest.approx(8.0, abs=0.3)


def test_numpy_and_torch_agree(rng):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    n_bins, bin_mm = 35, 3.9
    theta = (np.arange(48) * 7.5 + 3.0) % 360
    sino = rng.random((2, 7, 48, n_bins)).astype(np.float32)
    for interp in ("linear", "nearest"):
        a = fbp(sino, theta, bin_mm, interpolation=interp, output_size=38)
        b = fbp(sino, theta, bin_mm, interpolation=interp, output_size=38, backend="torch", device="cpu")
        t = fbp(torch.from_numpy(sino), theta, bin_mm, interpolation=interp, output_size=38, backend="torch")
        assert isinstance(b, np.ndarray) and isinstance(t, torch.Tensor)
        tol = 1e-5 * np.abs(a).max()  # float32, different summation order
        assert np.abs(a - b).max() < tol
        assert np.abs(a - t.numpy()).max() < tol
    if torch.cuda.is_available():
        g = fbp(sino, theta, bin_mm, backend="torch", device="cuda")
        assert np.abs(fbp(sino, theta, bin_mm) - g).max() < 1e-4 * np.abs(g).max()


def test_reconstruct_frames_native_orientation():
    # a small ball at a known (x, y, z) in mm must land there through native_affine;
    # n_rows != n_bins and a (2,) subject batch catch axis mix-ups
    n_bins, n_rows, bin_mm = 25, 11, 4.0
    theta = (90.0 - np.arange(40) * 9.0) % 360  # a CW acquisition
    x0, y0, z0, r = 16.0, -8.0, 12.0, 6.0
    z = row_positions(n_rows, bin_mm)
    frames = np.zeros((len(theta), n_rows, n_bins))
    for k, zr in enumerate(z):
        rk2 = r**2 - (zr - z0) ** 2  # sphere section at this row
        if rk2 > 0:
            # DICOM angles: the line integrals along x cos(theta) - y sin(theta) = s (geometry)
            frames[:, k, :] = disc_sinogram(radon_angles(theta), n_bins, bin_mm, np.sqrt(rk2), (x0, y0))
    frames = np.stack([frames, 2 * frames])
    vol = reconstruct_frames(frames, theta, bin_mm, filter_name="ram-lak", cutoff_cycles_per_cm=None)
    assert vol.shape == (2, n_bins, n_bins, n_rows)
    assert np.allclose(vol[1], 2 * vol[0], rtol=1e-5, atol=1e-6 * vol.max())
    ijk = np.array(np.unravel_index(np.argmax(vol[0]), vol[0].shape))
    mm = native_affine(n_bins, n_rows, bin_mm) @ np.r_[ijk, 1.0]
    assert np.allclose(mm[:3], (x0, y0, z0), atol=bin_mm / 2 + 1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"filter_name": "butterworth"}, "filter"), ({"interpolation": "cubic"}, "interpolation"),
     ({"backend": "jax"}, "backend"), ({"cutoff_cycles_per_cm": -1.0}, "cutoff")],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fbp(np.zeros((4, 8)), [0, 45, 90, 135], 4.0, **kwargs)


def test_wrong_sinogram_shape():
    with pytest.raises(ValueError, match="n_angles=4"):
        fbp(np.zeros((5, 8)), [0, 45, 90, 135], 4.0)


def test_device_resolution_is_the_package_one():
    # one resolver (datxai.devices) for every stage; the error names this stage's key
    import torch

    from datxai.recon.fbp import resolve_device

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match=r"reconstruct.device must be one of \['auto', 'cpu', 'cuda'\]; got 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="reconstruct.device is 'cuda' but no CUDA device"):
            fbp(np.zeros((4, 8)), [0, 45, 90, 135], 4.0, backend="torch", device="cuda")
