"""The CNN's architecture: parameter counts of the papers, module names (contract with explain), I/O."""

import numpy as np
import pytest
import torch

from datxai.io import InputError
from datxai.model import build_model, count_parameters, load_model, save_model

torch.set_num_threads(1)


def _analytic_count(shape, filters=16, n_conv=4, fc=(32, 16)):
    """Independent count: conv weights + biases, FC weights + biases (flatten = filters * voxels)."""
    n = (1 * filters * 27 + filters) + (n_conv - 1) * (filters * filters * 27 + filters)
    widths = [filters * int(np.prod(shape)), *fc, 2]
    n += sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))
    return n


@pytest.mark.parametrize("shape, fc, expected", [
    ((71, 90, 72), (32, 16), 235_582_786),   # S1: "236 M" for the full image (and without striatum)
    ((61, 44, 35), (32, 16), 48_119_106),    # the striatum crop with the same FC widths: 48.1 M
    ((61, 44, 35), (16, 16), 24_070_194),    # FC1 = 16: 24.1 M, S1 quotes 25 M
])
def test_parameter_counts_of_the_paper(shape, fc, expected):
    model = build_model(shape, fc_widths=fc, device="meta")  # no memory allocated
    assert count_parameters(model) == expected
    assert expected == _analytic_count(shape, fc=fc)
    assert round(expected / 1e6, 1) == {235_582_786: 235.6, 48_119_106: 48.1, 24_070_194: 24.1}[expected]


def test_module_names_are_the_contract():
    model = build_model((7, 8, 9), fc_widths=(6, 5, 4), seed=1)
    names = [n for n, _ in model.named_children()]
    assert names == ["features", "flatten", "classifier"]
    assert [n for n, _ in model.features.named_children()] == [
        "conv1", "relu1", "conv2", "relu2", "conv3", "relu3", "conv4", "relu4"]
    assert [n for n, _ in model.classifier.named_children()] == [
        "fc1", "fc_relu1", "dropout", "fc2", "fc_relu2", "fc3", "fc_relu3", "out"]
    assert model.classifier.dropout.p == 0.2
    conv = model.features.conv2
    assert conv.kernel_size == (3, 3, 3) and conv.stride == (1, 1, 1) and conv.padding == (1, 1, 1)
    assert conv.out_channels == 16 and model.classifier.out.out_features == 2


def test_forward_shapes_keep_the_grid_and_flatten_in_cxyz_order():
    torch.manual_seed(0)
    model = build_model((7, 8, 9), seed=3).eval()
    x = torch.randn(3, 1, 7, 8, 9)
    feats = model.features(x)
    assert feats.shape == (3, 16, 7, 8, 9)  # 'same' padding, no pooling: the grid is kept
    logits = model(x)
    assert logits.shape == (3, 2)
    # the classifier sees features flattened as C, x, y, z (reshape of the NCDHW tensor)
    assert torch.equal(model.classifier(feats.reshape(3, -1)), logits)
    # channels_last_3d memory (used on the GPU) must not change the order the FC layer sees
    x_cl = x.contiguous(memory_format=torch.channels_last_3d)
    model_cl = build_model((7, 8, 9), seed=3).eval().to(memory_format=torch.channels_last_3d)
    assert torch.allclose(model_cl(x_cl), logits, atol=1e-5)  # float32 reordering of sums
    with pytest.raises(ValueError, match=r"expected input \(N, 1, 7, 8, 9\)"):
        model(torch.randn(2, 1, 9, 8, 7))


def test_initialisation_is_seeded_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a, b, c = (build_model((5, 6, 4), seed=s) for s in (7, 7, 8))
    assert torch.equal(torch.get_rng_state(), before)
    for (k, va), vb, vc in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values()):
        assert torch.equal(va, vb), k
        if k.endswith("bias"):
            assert not va.any(), k  # Keras default: zero biases
        else:
            assert not torch.equal(va, vc), k


def test_initialisation_is_glorot_uniform():
    """Weight variance 2 / (fan_in + fan_out) (Glorot & Bengio 2010), which keeps activations from vanishing."""
    model = build_model((9, 10, 8), seed=3)
    for name, p in model.named_parameters():
        if name.endswith("weight"):
            fan_out, fan_in = p.shape[0] * p[0, 0].numel(), p.shape[1] * p[0, 0].numel()
            expected = 2.0 / (fan_in + fan_out)
            bound = (6.0 / (fan_in + fan_out)) ** 0.5
            assert p.abs().max() <= bound + 1e-7, name
            # sample variance of >= 432 uniform draws lies within 25 % of its expectation
            if p.numel() >= 432:
                assert p.var().item() == pytest.approx(expected, rel=0.25), name


def test_bad_architecture_is_refused():
    with pytest.raises(ValueError, match="input_shape"):
        build_model((7, 8))
    with pytest.raises(ValueError, match="fc_widths"):
        build_model((7, 8, 9), fc_widths=())
    with pytest.raises(ValueError, match="dropout"):
        build_model((7, 8, 9), dropout=1.5)


def test_save_and_load_rebuild_the_same_model(tmp_path):
    model = build_model((7, 8, 9), fc_widths=(8, 4), dropout=0.1, seed=5)
    save_model(model, tmp_path / "model.pt", setting="full", seed=5)
    loaded, info = load_model(tmp_path / "model.pt")
    assert info["arch"]["input_shape"] == [7, 8, 9] and info["arch"]["fc_widths"] == [8, 4]
    assert info["setting"] == "full" and info["classes"] == ["normal", "reduced"]
    assert not loaded.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])
    x = torch.randn(2, 1, 7, 8, 9)
    assert torch.equal(model.eval()(x), loaded(x))
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(InputError, match="junk.pt"):
        load_model(tmp_path / "junk.pt")
    with pytest.raises(InputError, match="not found"):
        load_model(tmp_path / "missing.pt")
