"""Known-answer tests of datxai.explain.faithfulness (region perturbation / AOPC, bootstrap, sanity checks)."""

import os
import sys

import numpy as np
import pandas as pd
import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))
from lrp_reference import tiny_model  # noqa: E402

from datxai.explain import faithfulness as F  # noqa: E402
from datxai.explain.lrp import LRPConfig  # noqa: E402
from datxai.model import build_model  # noqa: E402

torch.set_num_threads(1)
SHAPE = (8, 10, 8)  # 4 x 5 x 4 = 80 patches of 2 x 2 x 2
VOXEL = (3, 5, 2)  # the one voxel the hand-built net looks at (patch (1, 2, 1))
A = 1.5  # log-odds = 2 * A * x[VOXEL]


def one_voxel_net(shape=SHAPE, voxel=VOXEL, a=A):
    """The project's CNN (4 convs of 1 filter, FC 1) with weights set so that the logits are
    ``(-a x_v, a x_v)`` for positive images: identity (centre-tap) kernels, fc1 = one-hot at ``v``."""
    model = build_model(shape, conv_filters=1, n_conv=4, fc_widths=(1,), dropout=0.0, seed=0)
    with torch.no_grad():
        for i in range(1, 5):
            conv = model.features.get_submodule(f"conv{i}")
            conv.weight.zero_()
            conv.weight[0, 0, 1, 1, 1] = 1.0
            conv.bias.zero_()
        model.classifier.fc1.weight.zero_()
        model.classifier.fc1.weight[0, int(np.ravel_multi_index(voxel, shape))] = 1.0
        model.classifier.fc1.bias.zero_()
        model.classifier.out.weight.copy_(torch.tensor([[-a], [a]]))
        model.classifier.out.bias.zero_()
    return model.eval()


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(7)
    x = rng.uniform(0.5, 1.5, size=(3,) + SHAPE).astype(np.float32)
    x[:, VOXEL[0], VOXEL[1], VOXEL[2]] = [2.0, 1.5, 1.0]
    reference = rng.uniform(0.2, 0.4, size=SHAPE).astype(np.float32)  # a "mean image"
    return x, reference


# ------------------------------------------------------------------------ patches and schedule

def test_patch_index_tiles_with_partial_patches_at_the_high_end():
    labels, n = F.patch_index((5, 3, 4), (2, 2, 2))
    assert n == 3 * 2 * 2 and labels.shape == (5, 3, 4)
    sizes = np.bincount(labels.ravel(), minlength=n)
    assert sizes.sum() == 60 and set(np.unique(labels)) == set(range(n))
    assert sizes[0] == 8 and sizes[-1] == 1 * 1 * 2  # last patch: x = 4, y = 2, z = 2..3
    assert labels[0, 0, 0] == labels[1, 1, 1] != labels[2, 0, 0]


def test_random_scores_give_one_uniform_value_per_patch():
    labels, n = F.patch_index((5, 3, 4), 2)
    maps = F.random_scores(4, (5, 3, 4), 2, seed=3)
    sums = F.patch_scores(maps, labels, n)
    u = np.stack([np.random.default_rng([3, i]).random(n) for i in range(4)])
    np.testing.assert_allclose(sums, u, rtol=1e-12)  # partial border patches are not handicapped
    np.testing.assert_array_equal(maps, F.random_scores(4, (5, 3, 4), 2, seed=3))
    # a case's order does not depend on the batching: cases 2, 3 drawn as a batch of their own
    np.testing.assert_array_equal(maps[2:], F.random_scores(2, (5, 3, 4), 2, seed=3, first_case=2))
    assert not np.array_equal(np.argsort(sums[0]), np.argsort(F.patch_scores(F.random_scores(1, (5, 3, 4), 2, seed=4),
                                                                              labels, n)[0]))


def test_removal_schedule():
    np.testing.assert_array_equal(F.removal_schedule(80, steps=4, fraction_per_step=None), [0, 20, 40, 60, 80])
    np.testing.assert_array_equal(F.removal_schedule(80, steps=3, fraction_per_step=1 / 80), [0, 1, 2, 3])
    np.testing.assert_array_equal(F.removal_schedule(10, steps=4, fraction_per_step=0.3), [0, 3, 6, 9, 10])
    with pytest.raises(ValueError, match="less than one patch"):
        F.removal_schedule(80, steps=10, fraction_per_step=0.01)


# ------------------------------------------------------------------------ AOPC and bootstrap

def test_aopc_hand_computed():
    """(b) Samek's AOPC = 1/(K+1) sum_k (f(x0) - f(xk)): [0.9, 0.5, 0.3] -> (0 + 0.4 + 0.6) / 3."""
    assert F.aopc([0.9, 0.5, 0.3]) == pytest.approx(1.0 / 3.0, abs=1e-15)
    np.testing.assert_allclose(F.aopc([[0.9, 0.5, 0.3], [0.6, 0.6, 0.6], [0.2, 0.4, 0.5]]),
                               [1.0 / 3.0, 0.0, -0.5 / 3.0], atol=1e-15)  # a rising curve: negative


def test_bootstrap_ci_covers_the_mean_and_is_reproducible():
    """(c) the percentile interval of the mean contains the sample mean, is fixed by the seed, widens with level."""
    v = np.random.default_rng(0).normal(0.3, 0.1, size=40)
    lo, hi = F.bootstrap_ci(v, n_boot=2000, seed=5)
    assert lo < v.mean() < hi
    assert (lo, hi) == F.bootstrap_ci(v, n_boot=2000, seed=5)
    assert (lo, hi) != F.bootstrap_ci(v, n_boot=2000, seed=6)
    # about the normal-theory interval mean +- 1.96 sd / sqrt(n)
    half = 1.96 * v.std(ddof=1) / np.sqrt(v.size)
    assert hi - lo == pytest.approx(2 * half, rel=0.15)
    lo99, hi99 = F.bootstrap_ci(v, n_boot=2000, seed=5, level=0.99)
    assert lo99 < lo and hi99 > hi
    assert F.bootstrap_ci([0.25], n_boot=50, seed=0) == (0.25, 0.25)
    with pytest.raises(ValueError):
        F.bootstrap_ci([0.1, np.nan])


# ------------------------------------------------------------------------ region perturbation

def test_one_voxel_net_known_answer(images):
    """(a) A net whose logits depend on one voxel only: LRP (the papers' composite) and gradient x input put
    that voxel's patch first, so P(target) falls to its final value at step 1 and their AOPC is the largest
    any order can reach, K/(K+1) (f(x0) - f(removed)); a random order (3 seeds) scores strictly less."""
    x, reference = images
    model = one_voxel_net()
    labels, n_patches = F.patch_index(SHAPE, 2)
    steps, frac = 10, 1.0 / n_patches  # one patch per step
    k = steps
    xv = x[:, VOXEL[0], VOXEL[1], VOXEL[2]].astype(np.float64)
    f0 = sigmoid(2 * A * xv)  # P(reduced) of the intact image; the prediction is "reduced"
    f_removed = sigmoid(2 * A * float(reference[VOXEL]))
    best = k / (k + 1) * (f0 - f_removed)
    np.testing.assert_array_equal(F.predicted_target(model, x), [1, 1, 1])

    aopcs = {}
    for name in ("lrp", "gradient_x_input"):
        scores = F.ranking_scores(model, x, None, name, patch=2)
        sums = F.patch_scores(scores, labels, n_patches)
        assert np.all(sums.argmax(axis=1) == labels[VOXEL]), name
        curves = F.perturbation_curve(model, x, 1, scores, reference, patch=2, steps=steps, fraction_per_step=frac)
        assert curves.shape == (3, k + 1)
        np.testing.assert_allclose(curves[:, 0], f0, rtol=1e-5)
        np.testing.assert_allclose(curves[:, 1:], np.repeat(f_removed, 3 * k).reshape(3, k), rtol=1e-5)
        aopcs[name] = F.aopc(curves)
        np.testing.assert_allclose(aopcs[name], best, rtol=1e-5)

    # LRP's flat rule (conv1, conv2) spreads the voxel's relevance over its 5 x 5 x 5 neighbourhood,
    # (1, 2, 3, 2, 1)/9 per axis; the patch holding the voxel still gets the largest share.
    rel = F.ranking_scores(model, x[:1], None, "lrp", patch=2)[0]
    assert np.count_nonzero(rel) == 5 * 5 * 5 and rel[VOXEL] == rel.max()

    rand = []
    for seed in (0, 1, 2):
        scores = F.ranking_scores(model, x, None, "random", patch=2, seed=seed)
        rand.append(F.aopc(F.perturbation_curve(model, x, 1, scores, reference, patch=2, steps=steps,
                                                fraction_per_step=frac)))
    rand = np.mean(rand, axis=0)
    assert np.all(rand <= best + 1e-6)
    assert aopcs["lrp"].mean() > rand.mean() + 0.1 * best.mean()


def test_full_removal_with_one_voxel_patches_gives_f_of_reference():
    """(d) patch size 1, the whole volume removed: the last point is f(reference); step 0 is f(x)."""
    shape = (6, 7, 5)
    model = tiny_model(shape, seed=3)  # float64, the LRP reference net
    rng = np.random.default_rng(1)
    x = rng.uniform(0.0, 2.0, size=(4,) + shape)
    reference = rng.uniform(0.0, 1.0, size=shape)
    target = np.array([0, 1, 1, 0])
    with torch.no_grad():
        p_x = torch.softmax(model(torch.from_numpy(x).unsqueeze(1)), dim=1).numpy()[np.arange(4), target]
        p_ref = torch.softmax(model(torch.from_numpy(reference)[None, None]), dim=1).numpy()[0, target]
    for ranking in ("lrp", "random"):
        scores = F.ranking_scores(model, x, target, ranking, patch=1, seed=0)
        for steps, frac in ((1, 1.0), (7, None)):
            curves = F.perturbation_curve(model, x, target, scores, reference, patch=1, steps=steps,
                                          fraction_per_step=frac, batch_size=5)
            np.testing.assert_allclose(curves[:, 0], p_x, rtol=1e-12)
            np.testing.assert_allclose(curves[:, -1], p_ref, rtol=1e-12)
    # a scalar reference is the constant image
    curves = F.perturbation_curve(model, x, target, scores, 0.0, patch=1, steps=1, fraction_per_step=1.0)
    with torch.no_grad():
        p0 = torch.softmax(model(torch.zeros((1, 1) + shape, dtype=torch.float64)), dim=1).numpy()[0, target]
    np.testing.assert_allclose(curves[:, -1], p0, rtol=1e-12)


def test_removal_follows_the_ranking_patch_by_patch():
    """With a linear 'model' (the logit is a weighted sum of voxels) every step's P(target) is known in closed
    form: the removed set after step k is the k highest-scoring patches of the ranking map."""
    shape = (5, 4, 3)  # partial patches on x and z

    class Linear(torch.nn.Module):
        def __init__(self, w):
            super().__init__()
            self.w = torch.nn.Parameter(torch.as_tensor(w, dtype=torch.float64))

        def forward(self, x):
            z = (x.flatten(1) * self.w.flatten()).sum(1, keepdim=True)
            return torch.cat([torch.zeros_like(z), z], dim=1)

    rng = np.random.default_rng(4)
    w = rng.normal(0, 0.3, size=shape)
    x = rng.uniform(0, 1, size=(2,) + shape)
    ref = rng.uniform(0, 1, size=shape)
    scores = rng.normal(size=(2,) + shape)
    labels, n = F.patch_index(shape, 2)
    curves = F.perturbation_curve(Linear(w), x, 1, scores, ref, patch=2, steps=6, fraction_per_step=1 / n)
    for i in range(2):
        order = np.argsort(-F.patch_scores(scores[i:i + 1], labels, n)[0], kind="stable")
        for k in range(7):
            gone = np.isin(labels, order[:k])
            expect = sigmoid(float((np.where(gone, ref, x[i]) * w).sum()))
            assert curves[i, k] == pytest.approx(expect, rel=1e-12)


def test_experiment_table_and_summary(images):
    """The tidy table holds every ranking x seed x case x step and reproduces perturbation_curve;
    the summary's AOPC means and intervals come from the per-case AOPC."""
    x, reference = images
    model = one_voxel_net()
    steps, frac = 10, 1.0 / 80
    table, summary = F.perturbation_experiment(model, x, None, reference, random_seeds=(0, 1, 2), patch=2,
                                               steps=steps, fraction_per_step=frac, case_ids=["a", "b", "c"],
                                               cases_per_batch=2, n_boot=500)
    assert list(table.columns) == ["ranking", "seed", "case", "target", "step", "fraction_removed", "p_target"]
    assert len(table) == (1 + 1 + 3) * 3 * (steps + 1)
    assert table["seed"].isna().sum() == 2 * 3 * (steps + 1)
    np.testing.assert_allclose(table.loc[table.step == steps, "fraction_removed"], steps / 80)
    lrp = table[table.ranking == "lrp"].pivot(index="case", columns="step", values="p_target").loc[["a", "b", "c"]]
    direct = F.perturbation_curve(model, x, 1, F.ranking_scores(model, x, None, "lrp", patch=2), reference,
                                  patch=2, steps=steps, fraction_per_step=frac)
    np.testing.assert_allclose(lrp.to_numpy(), direct, rtol=1e-12)
    assert list(summary["ranking"]) == ["lrp", "gradient_x_input", "random"]
    assert list(summary["n_cases"]) == [3, 3, 3] and list(summary["n_seeds"]) == [1, 1, 3]
    row = summary.set_index("ranking").loc["lrp"]
    assert row.aopc_mean == pytest.approx(F.aopc(direct).mean(), rel=1e-12)
    assert row.ci_low <= row.aopc_mean <= row.ci_high
    s = summary.set_index("ranking")["aopc_mean"]
    assert s["lrp"] > s["random"]
    one_batch, _ = F.perturbation_experiment(model, x, None, reference, rankings=("random",), random_seeds=(0, 1, 2),
                                             patch=2, steps=steps, fraction_per_step=frac, case_ids=["a", "b", "c"],
                                             cases_per_batch=3, n_boot=10)
    np.testing.assert_array_equal(one_batch["p_target"], table.loc[table.ranking == "random", "p_target"])
    diff = F.paired_aopc_difference(table, "lrp", "random", n_boot=500)
    assert diff["n_cases"] == 3 and diff["mean_difference"] == pytest.approx(s["lrp"] - s["random"], rel=1e-9)
    assert diff["fraction_a_larger"] > 0.5


# ------------------------------------------------------------------------ sanity checks

@pytest.fixture(scope="module")
def trained():
    """A small CNN of the project's architecture, trained for 40 Adam steps on synthetic 'scans' whose
    class is the uptake of one of two bright blocks (the reduced class: 0.5 instead of 2)."""
    def data(n, seed):
        rng = np.random.default_rng(seed)
        y = np.arange(n) % 2
        x = rng.uniform(0.5, 1.0, size=(n,) + SHAPE)
        x[:, 2:4, 3:6, 3:5] += 2.0
        x[:, 5:7, 3:6, 3:5] += np.where(y == 1, 0.5, 2.0)[:, None, None, None]
        x += rng.normal(0, 0.1, size=x.shape)
        return x.astype(np.float32), y

    x, y = data(16, 0)
    model = build_model(SHAPE, conv_filters=4, n_conv=4, fc_widths=(16, 8), dropout=0.0, seed=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        xt, yt = torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y)
        for _ in range(40):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xt), yt).backward()
            opt.step()
    model.eval()
    x_test, y_test = data(6, 1)
    assert np.array_equal(F.predicted_target(model, x_test), y_test)  # it has learned the task
    return model, x_test


def test_cascading_randomisation(trained):
    """(e) Step 0 (nothing randomised) has similarity 1; with every layer randomised the maps lose their
    similarity to the trained maps (measured here: gradient x input Spearman ~0.24, SSIM ~0.43; LRP ~0.15
    and ~0.16); the same seed gives the same result; the trained model is left unchanged."""
    model, x = trained
    before = {k: v.clone() for k, v in model.state_dict().items()}
    layers = F.layer_names(model)
    assert layers == ["classifier.out", "classifier.fc2", "classifier.fc1", "features.conv4",
                      "features.conv3", "features.conv2", "features.conv1"]
    res = {}
    for method in ("gradient_x_input", "lrp"):
        r = F.cascading_randomisation(model, x, None, None, seed=0, method=method)
        res[method] = r
        assert r.layers == ("none", *layers)
        assert r.spearman.shape == r.ssim.shape == (len(layers) + 1, len(x))
        np.testing.assert_allclose(r.spearman[0], 1.0, atol=1e-12)
        np.testing.assert_allclose(r.ssim[0], 1.0, atol=1e-12)
        mean = r.mean()
        assert mean.spearman_mean.iloc[-1] < 0.5 and mean.ssim_mean.iloc[-1] < 0.6, (method, mean)
        frame = r.to_frame()
        assert len(frame) == (len(layers) + 1) * len(x) and set(frame.layer) == {"none", *layers}
    again = F.cascading_randomisation(model, x, None, None, seed=0, method="gradient_x_input")
    np.testing.assert_array_equal(again.spearman, res["gradient_x_input"].spearman)
    np.testing.assert_array_equal(again.ssim, res["gradient_x_input"].ssim)
    other = F.cascading_randomisation(model, x, None, layers[:2], seed=1, method="gradient_x_input")
    assert other.layers == ("none", *layers[:2])
    assert not np.array_equal(other.spearman[1:], res["gradient_x_input"].spearman[1:3])
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not model.training
    with pytest.raises(ValueError, match="not a Linear/Conv layer"):
        F.cascading_randomisation(model, x, None, ["classifier.nope"])


def test_randomised_copy_is_glorot_and_cumulative(trained):
    model, _ = trained
    a = F.randomised_copy(model, ["classifier.out", "classifier.fc2"], seed=0)
    b = F.randomised_copy(model, ["classifier.out", "classifier.fc2", "classifier.fc1"], seed=0)
    assert torch.equal(a.classifier.out.weight, b.classifier.out.weight)  # same draw at every step
    assert torch.equal(a.classifier.fc2.weight, b.classifier.fc2.weight)
    assert torch.equal(a.classifier.fc1.weight, model.classifier.fc1.weight)  # not randomised in a
    assert not torch.equal(b.classifier.fc1.weight, model.classifier.fc1.weight)
    w = b.classifier.fc1.weight.detach()
    bound = np.sqrt(6.0 / (w.shape[0] + w.shape[1]))
    assert float(w.abs().max()) <= bound and float(w.abs().max()) > 0.9 * bound
    assert float(w.std()) == pytest.approx(bound / np.sqrt(3), rel=0.05)
    assert float(b.classifier.fc1.bias.detach().abs().max()) == 0.0


def test_random_logit_on_a_class_sensitive_net():
    """Logit 1 reads voxel P, logit 0 reads voxel Q (far apart): the map of the other class shares nothing
    with the predicted class's map, for gradient x input and for LRP (flat conv1: 3 x 3 x 3 blobs)."""
    p, q = (1, 2, 1), (6, 7, 6)
    model = build_model(SHAPE, conv_filters=1, n_conv=1, fc_widths=(2,), dropout=0.0, seed=0)
    with torch.no_grad():
        model.features.conv1.weight.zero_()
        model.features.conv1.weight[0, 0, 1, 1, 1] = 1.0
        model.features.conv1.bias.zero_()
        model.classifier.fc1.weight.zero_()
        model.classifier.fc1.weight[0, int(np.ravel_multi_index(p, SHAPE))] = 1.0
        model.classifier.fc1.weight[1, int(np.ravel_multi_index(q, SHAPE))] = 1.0
        model.classifier.fc1.bias.zero_()
        model.classifier.out.weight.copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
        model.classifier.out.bias.zero_()
    x = np.random.default_rng(2).uniform(0.5, 1.0, size=(2,) + SHAPE).astype(np.float32)
    x[:, p[0], p[1], p[2]] = 3.0  # predicted: class 1
    cfg = LRPConfig(rules={"conv1": "flat", "fc": "epsilon"})
    for method in ("gradient_x_input", "lrp"):
        t = F.random_logit_similarity(model, x, method=method, lrp_config=cfg)
        assert list(t.columns) == ["case", "target", "other", "spearman", "ssim"]
        assert list(t.target) == [1, 1] and list(t.other) == [0, 0]
        assert np.all(t.spearman < 0.0) and np.all(t.ssim < 0.2), (method, t)
    # the same map against itself: similarity 1
    maps, _ = F.attribution(model, x, 1, "lrp", cfg)
    rho, ss = F.map_similarity(maps, maps)
    np.testing.assert_allclose(rho, 1.0)
    np.testing.assert_allclose(ss, 1.0)
    # all-zero maps have no structure: NaN, not a spurious 1
    rho, ss = F.map_similarity(np.zeros((1,) + SHAPE), np.zeros((1,) + SHAPE))
    assert np.isnan(rho[0]) and np.isnan(ss[0])


def test_inputs_are_checked(images):
    x, reference = images
    model = one_voxel_net()
    scores = F.ranking_scores(model, x, None, "random", patch=2)
    with pytest.raises(ValueError, match="reference"):
        F.perturbation_curve(model, x, 1, scores, reference[:4], patch=2, steps=2, fraction_per_step=0.5)
    with pytest.raises(ValueError, match="ranking maps"):
        F.perturbation_curve(model, x, 1, scores[:2], reference, patch=2, steps=2, fraction_per_step=0.5)
    with pytest.raises(ValueError, match="ranking must be"):
        F.ranking_scores(model, x, None, "saliency")
    with pytest.raises(ValueError, match="targets"):
        F.perturbation_curve(model, x, [1, 1], scores, reference, patch=2, steps=2, fraction_per_step=0.5)
    assert isinstance(F.perturbation_experiment(model, x[:1], 1, reference, rankings=("random",), random_seeds=(0,),
                                                patch=2, steps=2, fraction_per_step=0.5, n_boot=10)[0],
                      pd.DataFrame)
