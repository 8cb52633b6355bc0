"""zennit's composite against a float64 re-derivation of the papers' equations (tests/lrp_reference.py)."""

import os
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))
from lrp_reference import reference_relevance, tiny_model  # noqa: E402

from datxai.explain.lrp import (  # noqa: E402
    PAPER_RULES,
    LRPConfig,
    explain_array,
    relevance_batch,
    resolve_layer_rules,
)

torch.set_num_threads(1)
SHAPE = (6, 7, 5)  # non-cubic: catches axis mix-ups in the unrolled convolutions


@pytest.fixture(scope="module")
def model():
    return tiny_model(SHAPE, seed=3)


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(11)
    x = rng.uniform(0.0, 2.0, size=(3,) + SHAPE)
    x[1, :2] = 0.0  # a zero region, as outside the head
    return x


@pytest.mark.parametrize("backend", ["zennit", "direct"])
@pytest.mark.parametrize("zero_params", ["bias", "none"])
def test_backends_match_reference(model, inputs, zero_params, backend):
    cfg = LRPConfig(zero_params=zero_params)
    rules = resolve_layer_rules(model, cfg.rules)
    R, logits, tgt = relevance_batch(model, torch.from_numpy(inputs).unsqueeze(1), cfg, backend=backend)
    for k in range(len(inputs)):
        ref, ref_logits, ref_t = reference_relevance(model, inputs[k], rules, zero_bias=(zero_params == "bias"))
        assert tgt[k].item() == ref_t
        # direct: z = z+ + z- (+ b) in the alpha-beta layers (rounding ~1e-16 x sum |a w|)
        np.testing.assert_allclose(logits[k].numpy(), ref_logits, rtol=1e-12)
        # Both sides are float64 with the same stabilisers; what remains is summation order
        # over <= 420 terms per layer and 7 layers: ~1e-15 relative. 1e-10 of the map's scale is generous.
        scale = np.abs(ref).max()
        assert scale > 0
        np.testing.assert_allclose(R[k].numpy(), ref, rtol=0, atol=1e-10 * scale)


def test_explaining_the_other_output(model, inputs):
    cfg = LRPConfig()
    rules = resolve_layer_rules(model, cfg.rules)
    x = torch.from_numpy(inputs[:1]).unsqueeze(1)
    _, logits, tgt = relevance_batch(model, x, cfg)
    other = 1 - tgt
    R, _, t2 = relevance_batch(model, x, cfg, target=other)
    ref, _, _ = reference_relevance(model, inputs[0], rules, target=int(other[0]))
    assert t2[0].item() == other[0].item()
    np.testing.assert_allclose(R[0].numpy(), ref, rtol=0, atol=1e-10 * np.abs(ref).max())


def test_conservation_without_bias(model, inputs):
    """With zero bias every rule of the composite conserves relevance up to its stabilisers:
    epsilon loses ~eps/|z_j| per layer (3 layers, |z_j| ~ 1: ~3e-4), flat ~1e-6/27, alpha-beta
    exactly (alpha - beta = 1) wherever both z+ and z- are non-zero. Hence 1e-3."""
    R, logits, tgt = relevance_batch(model, torch.from_numpy(inputs).unsqueeze(1), LRPConfig(zero_params="bias"))
    top = logits[torch.arange(len(tgt)), tgt]
    ratio = (R.sum(dim=(1, 2, 3)) / top).numpy()
    np.testing.assert_allclose(ratio, 1.0, atol=1e-3)
    # a tiny epsilon makes the loss vanish: conservation to 1e-5 (alpha-beta and flat stabilisers remain)
    R2, _, _ = relevance_batch(model, torch.from_numpy(inputs).unsqueeze(1), LRPConfig(epsilon=1e-12))
    np.testing.assert_allclose((R2.sum(dim=(1, 2, 3)) / top).numpy(), 1.0, atol=1e-5)


def test_maps_are_finite_and_not_zero(model, inputs):
    R, _, _ = relevance_batch(model, torch.from_numpy(inputs).unsqueeze(1), LRPConfig())
    assert torch.isfinite(R).all()
    for k in range(len(R)):
        assert (R[k] != 0).mean(dtype=torch.float64) > 0.5  # flat layers spread relevance to most voxels
    assert (R > 0).any() and (R < 0).any()  # alpha-beta gives both signs


def test_relu_pass_matters(model, inputs):
    """Without Pass() at the ReLUs autograd's mask drops relevance that flat gives to inactive units."""
    x = torch.from_numpy(inputs).unsqueeze(1)
    R, _, _ = relevance_batch(model, x, LRPConfig())
    R_masked, _, _ = relevance_batch(model, x, LRPConfig(), pass_activations=False)
    assert (R - R_masked).abs().sum() > 1e-3 * R.abs().sum()


def test_dropout_is_off_and_model_state_restored(inputs):
    m = tiny_model(SHAPE, seed=3).train()
    x = torch.from_numpy(inputs).unsqueeze(1)
    R1, _, _ = relevance_batch(m, x, LRPConfig())
    R2, _, _ = relevance_batch(m, x, LRPConfig())
    assert torch.equal(R1, R2)  # dropout active would make these differ
    assert m.training and m.classifier.dropout.training
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in m.modules())  # composite removed


def test_rules_by_name_fail_loudly(model):
    with pytest.raises(ValueError, match="no rule for layer"):
        resolve_layer_rules(model, {k: v for k, v in PAPER_RULES.items() if k != "conv2"})
    with pytest.raises(ValueError, match="match no layer"):
        resolve_layer_rules(model, dict(PAPER_RULES, conv5="flat"))
    with pytest.raises(ValueError, match=r"explain.rules.conv1 must be one of \['epsilon', .*\]; got 'magic'"):
        LRPConfig(rules=dict(PAPER_RULES, conv1="magic"))
    with pytest.raises(ValueError, match="alpha - beta = 1"):
        LRPConfig(alpha=2.0, beta=0.5)
    mapped = resolve_layer_rules(model, dict(PAPER_RULES, out="epsilon", **{"features.conv1": "alphabeta"}))
    assert mapped["features.conv1"] == "alphabeta" and mapped["features.conv2"] == "flat"
    assert mapped["classifier.fc1"] == "epsilon" and mapped["features.conv4"] == "alphabeta"


def test_explain_array_float32_batches_agree(inputs):
    """Batching does not change a case's map; float32 agrees with float64 to ~1e-6 relative."""
    m = tiny_model(SHAPE, seed=3)
    ref = [reference_relevance(m, inputs[k], resolve_layer_rules(m, PAPER_RULES))[0] for k in range(3)]
    for bs in (1, 2):
        out = list(explain_array(tiny_model(SHAPE, seed=3), inputs.astype(np.float32), LRPConfig(), batch_size=bs,
                                 device="cpu"))
        assert [c.index for c in out] == [0, 1, 2]
        for c, r in zip(out, ref):
            assert c.relevance.dtype == np.float32 and c.relevance.shape == SHAPE
            np.testing.assert_allclose(c.relevance, r, rtol=0, atol=1e-5 * np.abs(r).max())
            assert abs(c.conservation - 1.0) < 1e-3


# --- the direct (batched tensor) backend against zennit's hooks -------------------------------------------------

RULE_SETS = [
    dict(PAPER_RULES),
    {"fc": "flat", "conv": "zplus"},
    {"fc": "alphabeta", "conv": "epsilon"},
    {"fc": "epsilon", "conv": "alphabeta"},
]


@pytest.mark.parametrize("rules", RULE_SETS, ids=["paper", "zplus-flat", "eps-conv", "ab-all"])
@pytest.mark.parametrize("zero_params", ["bias", "none"])
@pytest.mark.parametrize("pass_activations", [True, False])
@pytest.mark.parametrize("shift", [0.0, -1.0], ids=["nonneg", "signed"])
def test_direct_equals_zennit_float64(model, inputs, rules, zero_params, pass_activations, shift):
    """Same rules, same stabilisers: the two backends differ only in summation order. In float64 that is ~1e-15
    of the map's scale (the alpha-beta layers' z = z+ + z- adds ~1e-16 x sum|a w| per layer); 1e-10 is generous
    and still catches any rule detail (a missing stabiliser sign, a bias in the wrong term: >= 1e-7).
    ``shift=-1`` gives the input negative values: conv1 then takes the four-term alpha-beta path (x+/x-)."""
    cfg = LRPConfig(rules=rules, zero_params=zero_params)
    x = torch.from_numpy(inputs + shift).unsqueeze(1)
    Rd, ld, td = relevance_batch(model, x, cfg, backend="direct", pass_activations=pass_activations)
    Rz, lz, tz = relevance_batch(model, x, cfg, backend="zennit", pass_activations=pass_activations)
    assert torch.equal(td, tz)
    np.testing.assert_allclose(ld.numpy(), lz.numpy(), rtol=0, atol=1e-12 * float(lz.abs().max()))
    scale = float(Rz.abs().max())
    assert scale > 0
    np.testing.assert_allclose(Rd.numpy(), Rz.numpy(), rtol=0, atol=1e-10 * scale)


def test_direct_equals_zennit_float32_datcnn():
    """The production CNN (channels-last convolutions) in float32 with several cases per batch. float32 rounding
    (6e-8) through 7 layers with up to 432-term sums, divided by denominators near zero in places: the observed
    difference is ~2e-6 of the map's scale on the 71 x 90 x 72 net (BENCHMARKS.md); 1e-4 leaves room, a wrong
    rule detail is >= 1e-3."""
    from datxai.model import build_model

    m = build_model((9, 11, 8), conv_filters=4, fc_widths=(8, 6), seed=1)
    rng = np.random.default_rng(5)
    x = torch.from_numpy(rng.uniform(0, 3, (3, 1, 9, 11, 8)).astype(np.float32))
    Rd, ld, td = relevance_batch(m, x, LRPConfig(), backend="direct")
    Rz, lz, tz = relevance_batch(m, x, LRPConfig(), backend="zennit")
    assert Rd.dtype == torch.float32 and Rd.shape == (3, 9, 11, 8)
    assert torch.equal(td, tz)
    np.testing.assert_allclose(ld.numpy(), lz.numpy(), rtol=1e-5, atol=1e-6)
    for k in range(3):
        scale = float(Rz[k].abs().max())
        np.testing.assert_allclose(Rd[k].numpy(), Rz[k].numpy(), rtol=0, atol=1e-4 * scale)


def _odd_geometry_net():
    """Strided, unpadded, anisotropically padded and dilated convolutions: the separable flat rule must hold."""
    torch.manual_seed(4)
    net = torch.nn.Sequential(
        torch.nn.Conv3d(1, 2, 3, stride=2), torch.nn.ReLU(),
        torch.nn.Conv3d(2, 3, (3, 2, 3), padding=(1, 0, 2), dilation=(1, 2, 1)), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 2 * 6, 2),
    ).double()
    return net


@pytest.mark.parametrize("rules", [{"conv": "flat", "fc": "epsilon"}, {"conv": "alphabeta", "fc": "flat"}])
def test_direct_equals_zennit_odd_geometry(rules):
    net = _odd_geometry_net()
    x = torch.rand(2, 1, 9, 9, 9, dtype=torch.float64)
    Rd, _, _ = relevance_batch(net, x, LRPConfig(rules=rules), backend="direct")
    Rz, _, _ = relevance_batch(net, x, LRPConfig(rules=rules), backend="zennit")
    np.testing.assert_allclose(Rd.numpy(), Rz.numpy(), rtol=0, atol=1e-10 * float(Rz.abs().max()))


def test_direct_falls_back_or_refuses():
    """gamma has no direct implementation; a forward the module chain does not show (here a functional tanh)
    is detected by the first-call check. auto falls back to zennit, direct refuses."""
    net = _odd_geometry_net()
    x = torch.rand(1, 1, 9, 9, 9, dtype=torch.float64)
    cfg = LRPConfig(rules={"conv": "gamma", "fc": "epsilon"})
    Ra, _, _ = relevance_batch(net, x, cfg, backend="auto")
    Rz, _, _ = relevance_batch(net, x, cfg, backend="zennit")
    assert torch.equal(Ra, Rz)
    with pytest.raises(ValueError, match="does not support"):
        relevance_batch(net, x, cfg, backend="direct")

    class Hidden(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = _odd_geometry_net()

        def forward(self, x):
            return self.net(torch.tanh(x))

    h = Hidden()
    with pytest.raises(ValueError, match="does not support"):
        relevance_batch(h, x, LRPConfig(rules={"conv": "flat", "fc": "epsilon"}), backend="direct")
    Ra, _, _ = relevance_batch(h, x, LRPConfig(rules={"conv": "flat", "fc": "epsilon"}), backend="auto")
    Rz, _, _ = relevance_batch(h, x, LRPConfig(rules={"conv": "flat", "fc": "epsilon"}), backend="zennit")
    assert torch.equal(Ra, Rz)
    with pytest.raises(ValueError, match="backend"):
        relevance_batch(net, x, LRPConfig(), backend="fast")


def test_explain_array_backends_and_device_selection(inputs):
    """explain_array runs the same batched code on any device; both backends agree through it (float32: 1e-4,
    see test_direct_equals_zennit_float32_datcnn). Asking for CUDA where there is none is a clear error."""
    from datxai.explain.lrp import pick_device

    m = tiny_model(SHAPE, seed=3)
    data = inputs.astype(np.float32)
    direct = list(explain_array(m, data, LRPConfig(), batch_size=2, device="cpu", backend="direct"))
    zen = list(explain_array(tiny_model(SHAPE, seed=3), data, LRPConfig(), batch_size=3, device="cpu",
                             backend="zennit"))
    for a, b in zip(direct, zen):
        assert a.index == b.index and a.target == b.target
        np.testing.assert_allclose(a.relevance, b.relevance, rtol=0, atol=1e-4 * np.abs(b.relevance).max())
    assert pick_device("cpu").type == "cpu"
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="explain.device is 'cuda' but no CUDA device is available"):
            list(explain_array(m, data, LRPConfig(), device="cuda"))


def test_input_centring_passes_relevance_through():
    """A centred DatCNN: both backends agree, and its relevance equals that of the uncentred net fed ``x - mean``
    (the subtraction has an identity gradient; LRP only sees the centred activations)."""
    from datxai.model import build_model

    shape = (7, 8, 6)
    rng = np.random.default_rng(8)
    train = rng.uniform(0, 3, (5, *shape))
    centred = build_model(shape, conv_filters=3, fc_widths=(6, 4), seed=2, center_input=True).double()
    centred.center.set_mean(train)
    plain = build_model(shape, conv_filters=3, fc_widths=(6, 4), seed=2).double()
    assert [n for n, _ in centred.named_modules()][1] == "center"
    x = torch.from_numpy(rng.uniform(0, 3, (3, 1, *shape)))
    mean = torch.from_numpy(train.mean(axis=0))
    Rd, ld, td = relevance_batch(centred, x, LRPConfig(), backend="direct")
    Rz, lz, tz = relevance_batch(centred, x, LRPConfig(), backend="zennit")
    Rp, lp, tp = relevance_batch(plain, x - mean, LRPConfig(), backend="zennit")
    assert torch.equal(td, tz) and torch.equal(td, tp)
    scale = float(Rz.abs().max())
    assert scale > 0
    np.testing.assert_allclose(Rd.numpy(), Rz.numpy(), rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(Rz.numpy(), Rp.numpy(), rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(lz.numpy(), lp.numpy(), rtol=0, atol=1e-12 * float(lp.abs().max()))


def _with_common_output_part(model, seed=0):
    """A copy of ``model`` whose two output rows both get the same random vector (and bias) added.

    The softmax, and so every prediction and the cross-entropy, is unchanged; each single logit is not.
    """
    import copy

    g = torch.Generator().manual_seed(seed)
    m = copy.deepcopy(model)
    out = m.classifier.out
    with torch.no_grad():
        out.weight += torch.randn(out.weight.shape[1], generator=g, dtype=out.weight.dtype)
        out.bias += torch.randn(1, generator=g, dtype=out.bias.dtype)
    return m


def test_margin_is_the_difference_of_the_two_logits_maps(model, inputs):
    """Every rule below the output layer is linear in the relevance it receives. The output
    layer's epsilon rule (bias out of the denominator) hands the penultimate unit i the share
    z_ic * out_c / z_c of output c, with z_ic = a_i w_ic and z_c = out_c - b_c. So the margin's
    map is s_m (R_1 / s_1 - R_0 / s_0) with s_c = out_c / (out_c - b_c), up to the stabiliser
    (relative eps / |z|; eps = 1e-12 here)."""
    from datxai.explain.lrp import logit_margin_model

    cfg = LRPConfig(epsilon=1e-12)
    x = torch.from_numpy(inputs).unsqueeze(1)
    margin = logit_margin_model(model, positive=1, negative=0)
    R_m, out_m, t_m = relevance_batch(margin, x, cfg, target=torch.zeros(len(x), dtype=torch.long))
    R_1, logits, _ = relevance_batch(model, x, cfg, target=torch.ones(len(x), dtype=torch.long))
    R_0, _, _ = relevance_batch(model, x, cfg, target=torch.zeros(len(x), dtype=torch.long))
    assert out_m.shape == (len(x), 1) and (t_m == 0).all()
    np.testing.assert_allclose(out_m[:, 0].numpy(), (logits[:, 1] - logits[:, 0]).numpy(), rtol=1e-12)
    b = model.classifier.out.bias.detach().double()
    s1, s0 = logits[:, 1] / (logits[:, 1] - b[1]), logits[:, 0] / (logits[:, 0] - b[0])
    sm = out_m[:, 0] / (out_m[:, 0] - (b[1] - b[0]))
    expected = sm[:, None, None, None] * (R_1 / s1[:, None, None, None] - R_0 / s0[:, None, None, None])
    scale = np.abs(R_m.numpy()).max()
    np.testing.assert_allclose(R_m.numpy(), expected.numpy(), rtol=0, atol=1e-9 * scale)
    # the float64 reference of the papers' equations, applied to the one-output margin net
    rules = resolve_layer_rules(margin, cfg.rules)
    ref, _, _ = reference_relevance(margin, inputs[0], rules, eps=1e-12, target=0)
    np.testing.assert_allclose(R_m[0].numpy(), ref, rtol=0, atol=1e-10 * np.abs(ref).max())
    assert model.classifier.out.out_features == 2  # the original is untouched


def test_margin_maps_ignore_what_the_softmax_ignores(model, inputs):
    """Adding one vector to both output rows changes no prediction; it changes the 'reduced'
    logit's map (its sign in places), not the margin's."""
    from datxai.explain.lrp import logit_margin_model

    cfg = LRPConfig()
    x = torch.from_numpy(inputs).unsqueeze(1)
    shifted = _with_common_output_part(model)
    one = torch.ones(len(x), dtype=torch.long)
    zero = torch.zeros(len(x), dtype=torch.long)
    R_a, la, _ = relevance_batch(model, x, cfg, target=one)
    R_b, lb, _ = relevance_batch(shifted, x, cfg, target=one)
    np.testing.assert_allclose(torch.softmax(la, 1).numpy(), torch.softmax(lb, 1).numpy(), rtol=1e-10)
    assert (R_a - R_b).abs().max() > 0.1 * R_a.abs().max()
    M_a, _, _ = relevance_batch(logit_margin_model(model), x, cfg, target=zero)
    M_b, _, _ = relevance_batch(logit_margin_model(shifted), x, cfg, target=zero)
    np.testing.assert_allclose(M_a.numpy(), M_b.numpy(), rtol=0, atol=1e-12 * np.abs(M_a.numpy()).max())


def test_training_never_moves_the_common_part_of_the_two_outputs():
    """Why a single logit's map is arbitrary: with two classes, softmax cross-entropy gives the two
    output rows opposite gradients (dL/dz_1 = -dL/dz_0), and Adam's per-parameter steps are then
    opposite too, so w_1 + w_0 and b_1 + b_0 stay at their random initial values throughout training."""
    from datxai.model import build_model

    torch.manual_seed(0)
    net = build_model((6, 7, 5), conv_filters=2, fc_widths=(8, 4), seed=5, center_input=True)
    out = net.classifier.out
    with torch.no_grad():
        out.bias.copy_(torch.tensor([0.3, -0.1]))  # build_model zeroes biases; make the sum non-trivial
    common_w, common_b = (out.weight.sum(0).detach().clone(), out.bias.sum().detach().clone())
    diff_w = (out.weight[1] - out.weight[0]).detach().clone()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    x = torch.rand(16, 1, 6, 7, 5)
    y = torch.randint(0, 2, (16,))
    net.train()
    for _ in range(20):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    assert (out.weight[1] - out.weight[0] - diff_w).abs().max() > 1e-2  # the margin learned
    # float32 rounding of 20 opposite steps of size ~lr
    torch.testing.assert_close(out.weight.sum(0).detach(), common_w, rtol=0, atol=1e-5)
    torch.testing.assert_close(out.bias.sum().detach(), common_b, rtol=0, atol=1e-5)
