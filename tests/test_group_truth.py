"""Classes of clusters from the synthetic truth (datxai.group.truth): known cases, a recovered resolution, the
truth images with and without the planted effects, detectability."""

import copy

import numpy as np
import pandas as pd
import pytest

from datxai.config import load_config
from datxai.grid import Grid
from datxai.group import truth


def test_classify_known_cases():
    assert truth.classify(-0.10, -0.10, -0.08)[0] == "spill-over"  # the striatal loss gives 80 %
    assert truth.classify(-0.10, -0.10, -0.02)[0] == "planted"
    cls, share, explained = truth.classify(-0.10, -0.02, -0.02)  # the truth gives 20 % of what is seen
    assert cls == "spurious" and explained == pytest.approx(0.2) and share == pytest.approx(1.0)
    assert truth.classify(-0.10, 0.05, 0.05)[0] == "spurious"  # the other sign
    assert truth.classify(0.0, 0.0, 0.0)[0] == "spurious"
    # the truth puts less there than the sample's standard error: nothing this n could show
    assert truth.classify(-0.0001, -0.00009, -0.00009, se_observed=0.01)[0] == "spurious"
    assert truth.classify(-0.05, -0.05, -0.04, se_observed=0.01)[0] == "spill-over"
    values = np.array([1.0, 2.0, 3.0, 2.0, 3.0, 4.0])
    se = truth.standard_error(values, np.array([1, 1, 1, 0, 0, 0], bool))
    assert se == pytest.approx(1.0 * np.sqrt(2 / 3))  # pooled SD 1
    # on the rule's edges
    assert truth.classify(-0.1, -0.025, -0.0124)[0] == "planted"
    assert truth.classify(-0.1, -0.025, -0.0125)[0] == "spill-over"


def test_fit_resolution_recovers_a_known_blur():
    rng = np.random.default_rng(0)
    sharp = np.zeros((30, 30, 30))
    for _ in range(40):
        i, j, k = rng.integers(4, 26, 3)
        sharp[i, j, k] += rng.uniform(1, 3)
    observed = 0.9 * truth.blur(sharp, 10.0, 2.0) + 0.2  # an offset the gain cannot absorb leaves r < 1
    mask = np.ones(sharp.shape, bool)
    fwhm, gain, r = truth.fit_resolution(sharp, observed - 0.2, mask, 2.0)
    assert fwhm == 10.0 and gain == pytest.approx(0.9, rel=1e-6) and r == pytest.approx(1.0)
    # FWHM of the blur: a point's profile at half maximum
    point = np.zeros((41, 1, 1))
    point[20] = 1
    prof = truth.blur(point, 12.0, 1.0)[:, 0, 0] / truth.blur(point, 12.0, 1.0)[:, 0, 0].max()
    assert (prof >= 0.5).sum() in (11, 13)  # 12 mm at 1 mm voxels


def test_group_difference_and_expected_t():
    imgs = np.stack([np.full((2, 2, 2), v) for v in (1.0, 1.2, 2.0, 2.2)])
    d = truth.group_difference(imgs, np.array([True, True, False, False]))
    assert np.allclose(d, -1.0)
    assert truth.expected_t(-1.0, 0.5, 8, 8) == pytest.approx(1.0 / (0.5 * np.sqrt(0.25)))


@pytest.fixture(scope="module")
def anatomy(repo_root):
    from datxai.simulate import phantom

    cfg = load_config(repo_root / "config" / "config.yaml")
    grid = phantom.phantom_grid(cfg["grid"], 6.0)
    return cfg, phantom.build_anatomy(grid, phantom.required_regions(cfg["simulate"]))


def test_truth_images_without_the_planted_effects_differ_only_there(anatomy):
    from datxai.simulate import cohort

    cfg, anat = anatomy
    sim = copy.deepcopy(cfg["simulate"])
    sim["n_subjects"] = 12
    rows = cohort.draw_cohort(sim, 3).to_dict("records")
    red = next(r for r in rows if r["true_class"] == "reduced")
    nor = next(r for r in rows if r["true_class"] == "normal")
    grid = Grid((24, 30, 24), 6.0, (0.0, -18.0, 11.0))
    ref = np.zeros(grid.shape, bool)
    ref[2:22, 3:27, 14:20] = True  # a cortical slab as the reference region
    mirrored = {red["subject"]: False, nor["subject"]: True}
    with_p = truth.truth_images([red, nor], sim, anat, grid, ref, 75.0, mirrored, planted=True)
    without = truth.truth_images([red, nor], sim, anat, grid, ref, 75.0, mirrored, planted=False)
    np.testing.assert_array_equal(with_p[1], without[1])  # a normal subject carries no planted effect
    diff = without[0] - with_p[0]
    assert diff.max() > 0.01 and diff.min() > -1e-6  # removing a reduction only raises uptake
    # where it rises: in the planted regions (the reference percentile may move everything by a little)
    from datxai.simulate import phantom

    planted = cohort.planted_effects(red, sim)
    assert planted, "the demo config plants extrastriatal reductions"
    where = sum(phantom.to_analysis_grid(anat.prob[(p["region"], p["side"])], anat.grid, grid) for p in planted)
    assert diff[where > 0.05].sum() > 0.9 * diff.sum()


def test_detectability_statuses_and_recovery():
    box = np.zeros((10, 10, 10), bool)
    box[3:7, 3:7, 3:7] = True
    inside = np.zeros_like(box)
    inside[4:6, 4:6, 4:6] = True
    outside = np.zeros_like(box)
    outside[0:2, 0:2, 0:2] = True
    weak = np.zeros_like(box)
    weak[8:10, 8:10, 8:10] = True
    d = np.zeros(box.shape)
    d[inside] = d[outside] = -0.1
    d[weak] = -0.01
    rng = np.random.default_rng(1)
    red = np.r_[np.ones(20, bool), np.zeros(20, bool)]
    means = {k: (rng.normal(0, 0.05, 40), red) for k in [("A", "I"), ("B", "I"), ("C", "C")]}
    planted = [("A", "I", 20), ("B", "I", 20), ("C", "C", 20)]
    masks = {("A", "I"): inside, ("B", "I"): outside, ("C", "C"): weak}
    hits = {("nostriatum", "B", "I"): True}
    design = {"full": (20, 20, 4.5), "nostriatum": (20, 20, 4.5)}
    det = truth.detectability(planted, hits, masks, box, d, means, design).set_index(["method", "planted_region"])
    assert det.loc[("nostriatum", "A"), "status"] == "not visible in this setting"
    assert det.loc[("nostriatum", "B"), "status"] == "found"
    assert det.loc[("nostriatum", "C"), "status"] == "too weak at this n / resolution"
    assert det.loc[("full", "A"), "status"] == "missed by the method"
    rec = truth.recovery(det.reset_index()).set_index("method")
    assert rec.loc["nostriatum", "detectable"] == 1 and rec.loc["nostriatum", "recovery"] == 1.0
    assert rec.loc["full", "detectable"] == 2 and rec.loc["full", "recovery"] == 0.0
    assert isinstance(rec, pd.DataFrame)
