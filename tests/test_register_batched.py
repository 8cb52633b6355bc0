"""The batched torch estimator against the numpy one (its reference), on known transforms and bad fits."""

import numpy as np
import pytest
import torch

from datxai.geometry import mean_displacement_mm
from datxai.register import batched
from datxai.register.affine import estimate_affine, register, smooth_mm, spm_matrix
from datxai.register.batched import estimate_affine_batch, resolve_device
from datxai.register.template import phantom_image
from test_register_affine import GRID, NATIVE, NATIVE_SHAPE, SCALE, make_source, random_params

# agreement of the two implementations: the same iterations on the same model, sums rounded differently
# (float32 J'J in another order, grid_sample's float32 coordinates): their matrices differ by well under
# 1e-3 mm of mean displacement over the brain (measured: 2e-7 to 2.4e-4 mm)
AGREE_MM = 1e-3


@pytest.fixture(scope="module")
def template():
    return smooth_mm(phantom_image(GRID.shape, GRID.affine, scale=SCALE, fwhm_mm=8.0), GRID.affine, 6.0)


@pytest.fixture(scope="module")
def brain_points(template):
    return GRID.coords_mm()[:, template > 0.5 * template.max()].T


@pytest.fixture(scope="module")
def cases():
    """Four noisy sources under random known affines, smoothed as the workflow does (6 mm)."""
    rng = np.random.default_rng(11)
    ms = [spm_matrix(random_params(rng)) for _ in range(4)]
    return ms, [smooth_mm(make_source(m, rng), NATIVE, 6.0) for m in ms]


def assert_same_fit(a, b, points):
    assert mean_displacement_mm(a.matrix, b.matrix, points) < AGREE_MM
    assert a.flags == b.flags and a.diverged == b.diverged and a.converged == b.converged
    assert a.cost == pytest.approx(b.cost, rel=1e-4)
    assert a.initial_cost == pytest.approx(b.initial_cost, rel=1e-4)
    assert a.scale == pytest.approx(b.scale, rel=1e-5)
    assert a.correlation == pytest.approx(b.correlation, abs=1e-5)
    assert abs(a.iterations - b.iterations) <= 2  # a step at the tolerance may go either way
    np.testing.assert_array_equal(a.initial_matrix, b.initial_matrix)


def test_batch_matches_numpy_and_recovers_known_affines(template, brain_points, cases):
    ms, sources = cases
    out = estimate_affine_batch(sources, [NATIVE] * len(sources), template, GRID.affine, device="cpu")
    assert len(out) == len(sources)
    for m, src, res in zip(ms, sources, out):
        ref = estimate_affine(src, NATIVE, template, GRID.affine)
        assert_same_fit(res, ref, brain_points)
        assert mean_displacement_mm(res.matrix, m, brain_points) < 1.0  # the spec's tolerance (half a voxel)
        assert mean_displacement_mm(res.initial_matrix, m, brain_points) > 2.0  # not started at the answer
        assert res.flags == [] and res.scale == pytest.approx(40.0, rel=0.05)


def test_smoothing_options_and_starts_are_passed_through(template, brain_points, cases):
    ms, sources = cases
    raw = [make_source(m, np.random.default_rng(i)) for i, m in enumerate(ms[:2])]
    starts = [np.eye(4), ms[1] @ spm_matrix(np.r_[2.0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0])]
    kw = dict(fwhm_mm=6.0, sampling_mm=(8.0,), regularization=0.1, max_iterations=5)
    out = estimate_affine_batch(raw, [NATIVE] * 2, template, GRID.affine, init_matrices=starts, device="cpu", **kw)
    for src, start, res in zip(raw, starts, out):
        ref = register(src, NATIVE, template, GRID.affine, init_matrix=start, **kw)
        assert_same_fit(res, ref, brain_points)
        assert res.iterations_per_level == ref.iterations_per_level
        np.testing.assert_array_equal(res.initial_matrix, start)


def test_bad_fits_get_the_same_flags(template, brain_points):
    rng = np.random.default_rng(7)
    noise = rng.normal(0, 1, NATIVE_SHAPE).astype(np.float32)
    tiny = phantom_image(NATIVE_SHAPE, NATIVE, scale=SCALE * 0.4, fwhm_mm=6.0)  # a header 2.5x off
    good = make_source(np.eye(4), np.random.default_rng(8))
    out = estimate_affine_batch([noise, tiny, good], [NATIVE] * 3, template, GRID.affine, fwhm_mm=8.0, device="cpu")
    for src, res in zip([noise, tiny, good], out):
        ref = register(src, NATIVE, template, GRID.affine, fwhm_mm=8.0)
        assert res.flags == ref.flags and res.diverged == ref.diverged
        if not ref.diverged:
            assert_same_fit(res, ref, brain_points)
    assert out[0].diverged and "poor_fit" in out[0].flags
    assert out[1].diverged and not out[2].diverged


def test_sources_of_different_shapes_are_batched_by_shape(template, brain_points, cases):
    ms, sources = cases
    # the second source on a cropped grid of another shape (same voxels, shifted origin)
    crop = sources[1][2:-3, 1:, :-2]
    crop_aff = NATIVE.copy()
    crop_aff[:3, 3] += NATIVE[:3, :3] @ np.array([2, 1, 0])
    out = estimate_affine_batch([sources[0], crop, sources[2]], [NATIVE, crop_aff, NATIVE], template, GRID.affine,
                                device="cpu")
    ref = estimate_affine(crop, crop_aff, template, GRID.affine)
    assert_same_fit(out[1], ref, brain_points)
    assert mean_displacement_mm(out[1].matrix, ms[1], brain_points) < 1.0
    assert_same_fit(out[2], estimate_affine(sources[2], NATIVE, template, GRID.affine), brain_points)


def test_row_subsets_and_chunks_give_the_same_numbers(template, cases, monkeypatch):
    """The sampler's three paths (a run of rows, any rows, one row at a time) and chunking agree.

    Picking rows samples the same points: the costs are equal to the bit. Chunking changes only the batch size of
    the matrix products, whose blocking (and so summation order) is the BLAS's choice: the float64 gradient agrees
    to 1e-12, the Hessian's outer product ``o o^T`` (float32, then widened) to float32 rounding (measured 2e-5
    relative at most on the cases; 1e-4 allowed); a wrong row or point would differ at order 1.
    """
    from datxai.register.affine import centre_of_mass_start, global_mean, level_points, spm_imatrix

    _, sources = cases
    f = torch.as_tensor(np.stack([s / global_mean(s) for s in sources]).astype(np.float32))
    vols = torch.stack([f, *torch.gradient(f, dim=(1, 2, 3))], dim=1).permute(0, 1, 4, 3, 2).contiguous()
    g, x = level_points(template / global_mean(template), GRID.affine, 8.0)
    prob = batched._BatchProblem(vols, np.stack([np.linalg.inv(NATIVE)] * 4), g, x, 0.01)
    params = [spm_imatrix(centre_of_mass_start(s, NATIVE, template, GRID.affine)) for s in sources]
    scales = [40.0, 41.0, 39.0, 40.5]
    every = prob.costs([0, 1, 2, 3], params, scales)
    picked = prob.costs([3, 1], [params[3], params[1]], [scales[3], scales[1]])
    np.testing.assert_array_equal(picked, every[[3, 1]])
    lin_all = prob.linearise([0, 1, 2, 3], params, scales)
    monkeypatch.setattr(batched, "POINTS_PER_CHUNK", 1)  # one row per tensor operation
    lin_chunked = prob.linearise([0, 1, 2, 3], params, scales)
    np.testing.assert_array_equal(prob.costs([0, 1, 2, 3], params, scales), every)
    for (c1, g1, h1), (c2, g2, h2) in zip(lin_all, lin_chunked):
        assert c1 == pytest.approx(c2, rel=1e-12)
        np.testing.assert_allclose(g1, g2, rtol=1e-9, atol=1e-12 * np.abs(g1).max())
        np.testing.assert_allclose(h1, h2, rtol=1e-4, atol=1e-6 * np.abs(h1).max())
    # an invalid parameter set (zero zoom) costs inf and has no samples, as in the numpy version
    bad = params[0].copy()
    bad[6] = 0.0
    assert prob.costs([0], [bad], [40.0])[0] == np.inf
    assert prob.samples([0], [bad])[0][0].size == 0


def test_bad_input_is_named(template, cases):
    _, sources = cases
    broken = sources[1].copy()
    broken[3, 3, 3] = np.nan
    with pytest.raises(ValueError, match="source 1 of 3: .*finite"):
        estimate_affine_batch([sources[0], broken, sources[2]], [NATIVE] * 3, template, GRID.affine, device="cpu")
    with pytest.raises(ValueError, match="source 0 of 1: .*3-D"):
        estimate_affine_batch([sources[0][0]], [NATIVE], template, GRID.affine, device="cpu")
    with pytest.raises(ValueError, match="2 sources but 1 affines"):
        estimate_affine_batch(sources[:2], [NATIVE], template, GRID.affine, device="cpu")
    with pytest.raises(ValueError, match="normalize.device must be"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert estimate_affine_batch([], [], template, GRID.affine, device="cpu") == []
