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


@pytest.mark.parametrize("zero_params", ["bias", "none"])
def test_zennit_matches_reference(model, inputs, zero_params):
    cfg = LRPConfig(zero_params=zero_params)
    rules = resolve_layer_rules(model, cfg.rules)
    R, logits, tgt = relevance_batch(model, torch.from_numpy(inputs).unsqueeze(1), cfg)
    for k in range(len(inputs)):
        ref, ref_logits, ref_t = reference_relevance(model, inputs[k], rules, zero_bias=(zero_params == "bias"))
        assert tgt[k].item() == ref_t
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
    with pytest.raises(ValueError, match="unknown rule"):
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
