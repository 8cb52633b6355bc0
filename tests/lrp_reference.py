"""A float64 reference of the LRP composite, written from the papers' equations (tests only).

Every layer of a tiny version of the CNN is unrolled into a dense matrix
(convolutions by explicit index arithmetic, not by torch), and each rule is
evaluated elementwise on ``z_ij = a_i w_ij`` exactly as printed in S1/S2:

* epsilon:    R_i = sum_j z_ij / (z_j + eps sign(z_j)) R_j,        z_j = sum_i z_ij (+ b_j)
* alpha-beta: R_i = sum_j (alpha z+_ij / z+_j - beta z-_ij / z-_j) R_j
* flat:       R_i = sum_j c_ij / sum_i c_ij R_j,  c_ij = 1 where i is in j's receptive field
* ReLU:       relevance passes unchanged; flatten keeps (C, x, y, z) order.

The only non-paper detail mirrored here is zennit's stabiliser of the
alpha-beta and flat denominators (1e-6 added with their sign, sign(0) = +1;
a relative effect of ~1e-7); with it the two implementations agree to
rounding (see test_explain_lrp.py).
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch import nn

AB_STABILISER = 1e-6  # zennit's default `stabilizer` of AlphaBeta
FLAT_STABILISER = 1e-6  # and of Flat (added to the receptive-field count)


def tiny_model(input_shape=(6, 7, 5), filters=2, fc=(8, 4), seed=0, dtype=torch.float64) -> nn.Module:
    """The CNN of the contract at toy scale: 4 x Conv3d(3, same) + ReLU, FC fc[0] -> fc[1] -> 2.

    Module names follow :mod:`datxai.model` (``features.conv1`` ... ``classifier.out``).
    Weights are random but biased so that some ReLUs are active and some are not.
    """
    torch.manual_seed(seed)
    feats = []
    c_in = 1
    for k in range(1, 5):
        feats += [(f"conv{k}", nn.Conv3d(c_in, filters, 3, padding=1)), (f"relu{k}", nn.ReLU())]
        c_in = filters
    n_flat = filters * int(np.prod(input_shape))
    cls = [("fc1", nn.Linear(n_flat, fc[0])), ("fc_relu1", nn.ReLU()), ("dropout", nn.Dropout(0.2))]
    prev = fc[0]
    for k, w in enumerate(fc[1:], start=2):
        cls += [(f"fc{k}", nn.Linear(prev, w)), (f"fc_relu{k}", nn.ReLU())]
        prev = w
    cls += [("out", nn.Linear(prev, 2))]

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            from collections import OrderedDict

            self.features = nn.Sequential(OrderedDict(feats))
            self.flatten = nn.Flatten()
            self.classifier = nn.Sequential(OrderedDict(cls))

        def forward(self, x):
            return self.classifier(self.flatten(self.features(x)))

    model = Tiny().to(dtype)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv3d):
                m.weight.normal_(0.05, 0.3)
                m.bias.uniform_(-0.1, 0.2)
            elif isinstance(m, nn.Linear):
                m.weight.normal_(0.0, 1.0 / np.sqrt(m.in_features))
                m.bias.uniform_(-0.1, 0.1)
    return model.eval()


def conv_matrix(weight: np.ndarray, bias: np.ndarray, shape: tuple[int, int, int]):
    """Dense operator of a stride-1, 'same' (zero-padded) 3-D convolution (cross-correlation, as torch).

    Returns ``W`` ``(C_out*n, C_in*n)``, ``b`` ``(C_out*n,)`` and the receptive-field
    indicator ``C`` (same shape as ``W``, 1 where input i feeds output j), with
    vectors ordered ``(c, x, y, z)`` C-contiguous.
    """
    c_out, c_in, kx, ky, kz = weight.shape
    n = int(np.prod(shape))
    W = np.zeros((c_out * n, c_in * n))
    C = np.zeros_like(W)
    pad = (kx // 2, ky // 2, kz // 2)
    for (x, y, z) in itertools.product(*(range(s) for s in shape)):
        j = np.ravel_multi_index((x, y, z), shape)
        for (dx, dy, dz) in itertools.product(range(kx), range(ky), range(kz)):
            xi, yi, zi = x + dx - pad[0], y + dy - pad[1], z + dz - pad[2]
            if not (0 <= xi < shape[0] and 0 <= yi < shape[1] and 0 <= zi < shape[2]):
                continue  # zero padding: no input there
            i = np.ravel_multi_index((xi, yi, zi), shape)
            for o in range(c_out):
                for c in range(c_in):
                    W[o * n + j, c * n + i] = weight[o, c, dx, dy, dz]
                    C[o * n + j, c * n + i] = 1.0
    b = np.repeat(bias, n)
    return W, b, C


def unroll(model: nn.Module, input_shape) -> list[dict]:
    """The model as a list of dense layers ``{name, W, b, C, relu}`` (float64, numpy)."""
    layers = []
    for name, m in model.features.named_children():
        if isinstance(m, nn.Conv3d):
            assert m.stride == (1, 1, 1) and m.dilation == (1, 1, 1)
            W, b, C = conv_matrix(m.weight.detach().double().numpy(), m.bias.detach().double().numpy(), input_shape)
            layers.append({"name": f"features.{name}", "W": W, "b": b, "C": C, "relu": False})
        elif isinstance(m, nn.ReLU):
            layers[-1]["relu"] = True
    for name, m in model.classifier.named_children():
        if isinstance(m, nn.Linear):
            W = m.weight.detach().double().numpy()
            layers.append({"name": f"classifier.{name}", "W": W, "b": m.bias.detach().double().numpy(),
                           "C": np.ones_like(W), "relu": False})
        elif isinstance(m, nn.ReLU):
            layers[-1]["relu"] = True
    return layers


def _sign0(v):
    return np.where(v >= 0, 1.0, -1.0)


def lrp_epsilon(a, W, b, R, eps, use_bias):
    z = a[None, :] * W  # z_ij stored as (j, i)
    zj = z.sum(axis=1) + (b if use_bias else 0.0)
    return (z / (zj + eps * _sign0(zj))[:, None] * R[:, None]).sum(axis=0)


def lrp_alphabeta(a, W, b, R, alpha, beta, use_bias):
    z = a[None, :] * W
    zp, zn = np.clip(z, 0, None), np.clip(z, None, 0)
    dp = zp.sum(axis=1) + (np.clip(b, 0, None) if use_bias else 0.0)
    dn = zn.sum(axis=1) + (np.clip(b, None, 0) if use_bias else 0.0)
    dp = dp + AB_STABILISER * _sign0(dp)
    dn = dn + AB_STABILISER * _sign0(dn)
    return ((alpha * zp / dp[:, None] - beta * zn / dn[:, None]) * R[:, None]).sum(axis=0)


def lrp_flat(C, R):
    n = C.sum(axis=1) + FLAT_STABILISER
    return (C / n[:, None] * R[:, None]).sum(axis=0)


def reference_relevance(model: nn.Module, x: np.ndarray, rules: dict[str, str], eps=1e-4, alpha=2.0, beta=1.0,
                        zero_bias=True, target=None):
    """Relevance of one input ``x`` ``(nx, ny, nz)`` by the composite, from the target logit.

    ``rules`` maps full layer names to ``epsilon | alphabeta | flat``.
    Returns ``(relevance (nx, ny, nz), logits (2,), target)``.
    """
    layers = unroll(model, x.shape)
    acts = [np.asarray(x, dtype=np.float64).ravel()]
    for L in layers:  # forward: the real network, biases included
        z = L["W"] @ acts[-1] + L["b"]
        acts.append(np.maximum(z, 0) if L["relu"] else z)
    logits = acts[-1]
    t = int(np.argmax(logits)) if target is None else int(target)
    R = np.zeros_like(logits)
    R[t] = logits[t]
    for L, a in zip(reversed(layers), reversed(acts[:-1])):
        rule = rules[L["name"]]
        if rule == "epsilon":
            R = lrp_epsilon(a, L["W"], L["b"], R, eps, not zero_bias)
        elif rule == "alphabeta":
            R = lrp_alphabeta(a, L["W"], L["b"], R, alpha, beta, not zero_bias)
        elif rule == "flat":
            R = lrp_flat(L["C"], R)
        else:
            raise ValueError(rule)
    return R.reshape(x.shape), logits, t
