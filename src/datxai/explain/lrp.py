"""Layer-wise relevance propagation (LRP) of the DAT-SPECT CNN with zennit.

The composite of S1/S2 (Bach et al. 2015; Montavon et al. 2019; Lapuschkin
et al. 2019), applied from the logit (pre-softmax) of the most activated output:

* every fully connected layer: LRP-epsilon,
  ``R_i = sum_j z_ij / (sum_i z_ij + eps * sign(sum_i z_ij)) R_j``, eps = 1e-4,
  ``sign(0) = +1``;
* conv4 and conv3: LRP-alpha-beta, alpha = 2, beta = 1,
  ``R_i = sum_j (alpha z+_ij / sum_i z+_ij - beta z-_ij / sum_i z-_ij) R_j``;
* conv2 and conv1: flat ("LRP-c", ``z_ij = 1``);
* with ``z_ij = a_i w_ij``.

Rules are attached **by module name** (``features.conv1`` ...,
``classifier.fc1`` ..., see :mod:`datxai.model`) from ``config.explain.rules``,
with :class:`zennit.composites.NameMapComposite`; every Conv/Linear layer must
be mapped and every key must match, so the mapping cannot shift silently.

Two details make zennit compute exactly the equations above:

* Activation (ReLU) modules are mapped to :class:`zennit.rules.Pass`. Without
  it, autograd multiplies the relevance by the ReLU's gradient mask, which drops
  the relevance the flat rule gives to inactive units (the equations give it to
  them; ~64 % of the map changes on a trained net).
* The equations carry no bias: ``zero_params='bias'`` (the default) removes the
  bias from the rules' denominators, so that relevance is conserved
  (sum of the map ~= the logit). ``zero_params='none'`` is zennit's default
  (bias absorbs part of the relevance).

Dropout is the identity because the model is put in eval mode for the pass.
zennit's stabiliser of the alpha-beta and flat denominators is 1e-6 (sign-aware).

Two backends compute the same composite (:func:`relevance_batch`, ``backend``):
``zennit`` (the hooks above) and ``direct`` (:mod:`datxai.explain.direct`: the
same rules and stabilisers written as batched tensor operations, 5x or more faster on
the paper's CNN; the default wherever the model is a plain chain of
Conv/Linear/ReLU/Dropout/Flatten). They agree to float rounding
(tests/test_explain_lrp.py; ~3e-6 of the map's scale in float32 at 71 x 90 x 72).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch
from torch import nn

from ..checks import check_choice, check_range
from .direct import relevance_direct
from .torchvision_compat import import_zennit

logger = logging.getLogger(__name__)

RULE_NAMES = ("epsilon", "alphabeta", "flat", "zplus", "gamma", "pass")
ZERO_PARAMS = ("bias", "none")
PAPER_RULES = {"fc": "epsilon", "conv4": "alphabeta", "conv3": "alphabeta", "conv2": "flat", "conv1": "flat"}
_LAYER_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.Softplus, nn.Tanh, nn.Sigmoid, nn.SiLU, nn.GELU)


@dataclass(frozen=True)
class LRPConfig:
    """Parameters of the composite (the ``explain`` config section).

    rules : key -> rule name. A key is a full module name (``features.conv3``),
        a module's last name (``conv3``, ``out``) or ``fc`` (every Linear layer)
        / ``conv`` (every convolution); more specific keys win.
    epsilon : LRP-epsilon stabiliser (added with the sign of the denominator).
    alpha, beta : alpha-beta weights; zennit requires ``alpha - beta = 1``.
    zero_params : ``"bias"`` (paper's equations, no bias terms) or ``"none"``.
    """

    rules: dict = field(default_factory=lambda: dict(PAPER_RULES))
    epsilon: float = 1e-4
    alpha: float = 2.0
    beta: float = 1.0
    zero_params: str = "bias"

    def __post_init__(self):
        for layer, rule in self.rules.items():
            check_choice(f"explain.rules.{layer}", rule, RULE_NAMES)
        check_range("explain.epsilon", self.epsilon, 0, low_inclusive=False)
        if self.alpha < 0 or self.beta < 0 or abs(self.alpha - self.beta - 1.0) > 1e-12:
            raise ValueError(
                f"explain.alpha and explain.beta must be >= 0 with alpha - beta = 1 (relevance conservation), "
                f"got alpha={self.alpha!r}, beta={self.beta!r}"
            )
        check_choice("explain.zero_params", self.zero_params, ZERO_PARAMS)

    @classmethod
    def from_config(cls, section: dict | None) -> "LRPConfig":
        """Build from the ``explain`` config section (missing keys take the paper's values)."""
        section = dict(section or {})
        known = {"rules", "epsilon", "alpha", "beta", "zero_params"}
        kwargs = {k: section[k] for k in known if k in section}
        if "rules" in kwargs:
            kwargs["rules"] = dict(kwargs["rules"])
        return cls(**kwargs)


def resolve_layer_rules(model: nn.Module, rules: dict) -> dict[str, str]:
    """Map every Linear/Conv module of ``model`` (full name) to a rule name.

    Precedence: full name > last name component > ``fc``/``conv`` groups.
    Raises ValueError if a key matches no module, or a layer gets no rule.
    """
    layers = {name: m for name, m in model.named_modules() if isinstance(m, _LAYER_TYPES)}
    if not layers:
        raise ValueError("the model has no Linear/Conv layers to explain")
    used: set[str] = set()
    out: dict[str, str] = {}
    for name, module in layers.items():
        short = name.rsplit(".", 1)[-1]
        group = "fc" if isinstance(module, nn.Linear) else "conv"
        keys = [k for k in (name, short, group) if k in rules]
        used.update(keys)  # a key counts as matching even where a more specific key wins
        if keys:
            out[name] = rules[keys[0]]
    unmapped = sorted(set(layers) - set(out))
    if unmapped:
        raise ValueError(f"explain.rules: no rule for layer(s) {unmapped}; keys given: {sorted(rules)}")
    unused = sorted(set(rules) - used)
    if unused:
        raise ValueError(
            f"explain.rules: key(s) {unused} match no layer of the model; layers are {sorted(layers)}"
        )
    return out


def make_rule(rule: str, cfg: LRPConfig):
    """A fresh zennit hook for one rule name."""
    check_choice("LRP rule", rule, RULE_NAMES)
    zennit = import_zennit()
    r = zennit.rules
    zp = "bias" if cfg.zero_params == "bias" else None
    if rule == "epsilon":
        return r.Epsilon(epsilon=cfg.epsilon, zero_params=zp)
    if rule == "alphabeta":
        return r.AlphaBeta(alpha=cfg.alpha, beta=cfg.beta, zero_params=zp)
    if rule == "flat":
        return r.Flat()  # z_ij = 1: neither weights nor bias enter
    if rule == "zplus":
        return r.ZPlus(zero_params=zp)
    if rule == "gamma":
        return r.Gamma(gamma=0.25, zero_params=zp)
    if rule == "pass":
        return r.Pass()
    raise AssertionError(f"LRP rule {rule!r} of RULE_NAMES has no hook")


def build_composite(model: nn.Module, cfg: LRPConfig, pass_activations: bool = True):
    """The name-mapped zennit composite for ``model``.

    ``pass_activations=False`` leaves the activations to autograd (their
    gradient mask then applies: kept only to demonstrate the difference).
    """
    zennit = import_zennit()
    layer_rules = resolve_layer_rules(model, cfg.rules)
    name_map = [((name,), make_rule(rule, cfg)) for name, rule in layer_rules.items()]
    if pass_activations:
        acts = tuple(name for name, m in model.named_modules() if isinstance(m, _ACTIVATIONS))
        if acts:
            name_map.append((acts, zennit.rules.Pass()))
    logger.debug("LRP composite: %s", {n: type(h).__name__ for names, h in name_map for n in names})
    return zennit.composites.NameMapComposite(name_map=name_map)


@contextlib.contextmanager
def _eval_mode(model: nn.Module):
    was = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, t in was:
            m.train(t)


BACKENDS = ("auto", "direct", "zennit")


def relevance_batch(model: nn.Module, x: torch.Tensor, cfg: LRPConfig, target: torch.Tensor | None = None,
                    pass_activations: bool = True, backend: str = "auto"
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """LRP relevance of one batch.

    Parameters
    ----------
    model : the CNN; input ``(N, 1, nx, ny, nz)``, output logits ``(N, C)``.
    x : input batch on the model's device and dtype.
    target : output index per case to explain; default the most activated
        output (argmax of the logits).
    backend : ``direct`` (:mod:`datxai.explain.direct`: the same rules as batched
        tensor operations, no hooks; for chains of Conv/Linear/ReLU/Dropout/Flatten
        such as the papers' CNN), ``zennit`` (the composite's hooks), or ``auto``
        (direct where supported, else zennit). Both give the same maps to float
        rounding (tests/test_explain_lrp.py).

    Returns
    -------
    relevance : ``(N, nx, ny, nz)`` (channel squeezed), same dtype as ``x``.
    logits : ``(N, C)``.
    target : ``(N,)`` long.

    The relevance entering the top layer is the target logit itself, so with
    conserving rules ``relevance.sum() ~= logits[target]``.
    """
    check_choice("LRP backend", backend, BACKENDS)
    if backend != "zennit":
        layer_rules = resolve_layer_rules(model, cfg.rules)
        shape = getattr(model, "input_shape", None)
        if shape is not None and (x.dim() != 5 or x.shape[1] != 1 or tuple(x.shape[2:]) != tuple(shape)):
            raise ValueError(f"expected input (N, 1, {', '.join(map(str, shape))}), got {tuple(x.shape)}")
        with _eval_mode(model):
            out = relevance_direct(model, x.detach(), layer_rules, epsilon=cfg.epsilon, alpha=cfg.alpha,
                                   beta=cfg.beta, zero_params=cfg.zero_params, target=target,
                                   pass_activations=pass_activations)
        if out is not None:
            rel, logits, tgt = out
            return rel.sum(dim=1), logits, tgt
        if backend == "direct":
            raise ValueError("LRP backend 'direct' does not support this model or rule set "
                             f"({ {n: r for n, r in layer_rules.items()} }); use backend='zennit'")
    composite = build_composite(model, cfg, pass_activations=pass_activations)
    with _eval_mode(model), torch.enable_grad():
        inp = x.detach().clone().requires_grad_(True)
        with composite.context(model) as modified:
            logits = modified(inp)
            if logits.ndim != 2:
                raise ValueError(f"the model must return logits of shape (N, C), got {tuple(logits.shape)}")
            tgt = logits.argmax(dim=1) if target is None else target.to(logits.device).long()
            grad_out = torch.zeros_like(logits)
            grad_out[torch.arange(len(tgt)), tgt] = logits.detach()[torch.arange(len(tgt)), tgt]
            (rel,) = torch.autograd.grad(logits, inp, grad_outputs=grad_out)
    return rel.detach().sum(dim=1), logits.detach(), tgt.detach()


def logit_margin_model(model: nn.Module, positive: int = 1, negative: int = 0) -> nn.Module:
    """A copy of ``model`` whose last Linear layer outputs one value: ``logit[positive] - logit[negative]``.

    For a two-class softmax this is the log-odds of ``positive``,
    ``log P(positive) / P(negative)``: the quantity the decision is made on
    (> 0 <=> ``positive`` is predicted). A single logit is not: the softmax is
    unchanged when the same vector is added to both output rows, and with two
    classes cross-entropy gives the two rows opposite gradients (Adam's steps too),
    so ``w_p + w_n`` never moves from its random initialisation
    (tests/test_explain_lrp.py). Each logit is half the log-odds plus that
    untrained random projection of the last hidden layer, and the sign of a
    single logit's map follows the seed and even the CPU's float rounding (on the
    demo: putamen-sign sensitivity 0.30-0.84 over three seeds and two instruction
    sets). Explaining the log-odds ("logit difference", Montavon et al. 2019,
    *LRP: an overview*, in LNCS 11700, on which output to explain for a softmax
    classifier) removes that part: relevance is conserved onto the log-odds,
    positive = evidence for ``positive``, negative = for ``negative``.

    The difference of two linear outputs is itself one linear output (weights
    ``w_p - w_n``, bias ``b_p - b_n``), so the copy keeps the module names (the
    rules still map by name) and every rule applies unchanged. ``model`` itself
    is not modified.
    """
    import copy

    linears = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("logit margin: the model has no Linear output layer")
    name, last = linears[-1]
    n_out = last.out_features
    if not (0 <= positive < n_out and 0 <= negative < n_out) or positive == negative:
        raise ValueError(f"logit margin: classes {positive} and {negative} must be two outputs of {n_out}")
    head = nn.Linear(last.in_features, 1, bias=last.bias is not None).to(last.weight.device, last.weight.dtype)
    with torch.no_grad():
        head.weight.copy_(last.weight[positive:positive + 1] - last.weight[negative:negative + 1])
        if last.bias is not None:
            head.bias.copy_(last.bias[positive:positive + 1] - last.bias[negative:negative + 1])
    margin = copy.deepcopy(model)
    parent_name, _, child = name.rpartition(".")
    setattr(margin.get_submodule(parent_name) if parent_name else margin, child, head)
    return margin


@dataclass
class CaseRelevance:
    """LRP result of one case: ``relevance`` ``(nx, ny, nz)`` float32, logits, explained index."""

    index: int
    relevance: np.ndarray
    logits: np.ndarray
    target: int

    @property
    def logit(self) -> float:
        return float(self.logits[self.target])

    @property
    def relevance_sum(self) -> float:
        return float(self.relevance.sum(dtype=np.float64))

    @property
    def conservation(self) -> float:
        """Sum of input relevance / explained logit (1 = conserved)."""
        return self.relevance_sum / self.logit if self.logit != 0 else float("nan")


def pick_device(device: str = "auto") -> torch.device:
    """:func:`datxai.devices.resolve_device` for ``explain.device`` (``auto`` -> CUDA when available, else CPU)."""
    from ..devices import resolve_device

    return resolve_device(device, key="explain.device")


def explain_array(model: nn.Module, data: np.ndarray, cfg: LRPConfig, batch_size: int = 4,
                  device: str | torch.device = "auto", targets: np.ndarray | None = None,
                  backend: str = "auto") -> Iterator[CaseRelevance]:
    """Relevance of every case of ``data`` ``(N, nx, ny, nz)`` (may be a memory map), batch by batch.

    Computation in float32 on ``device``; cases come back in input order.
    ``targets`` ``(N,)``: output index to explain per case (default: the most activated).
    ``backend``: see :func:`relevance_batch` (``auto``: the direct tensor implementation
    where it applies, the same on CPU and CUDA).
    """
    if data.ndim != 4:
        raise ValueError(f"expected cases as (N, nx, ny, nz), got shape {data.shape}")
    if targets is not None and len(targets) != len(data):
        raise ValueError(f"{len(targets)} targets for {len(data)} cases")
    check_range("explain.batch_size", batch_size, 1)
    dev = pick_device(device) if isinstance(device, str) else device
    if dev.type == "cuda":
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    model = model.to(dev).float()
    n = len(data)
    for start in range(0, n, batch_size):
        stop = min(n, start + batch_size)
        x = torch.from_numpy(np.array(data[start:stop], dtype=np.float32, copy=True)).unsqueeze(1).to(dev)
        tgt = None if targets is None else torch.as_tensor(np.asarray(targets[start:stop]), dtype=torch.long)
        rel, logits, tgt = relevance_batch(model, x, cfg, target=tgt, backend=backend)
        rel, logits, tgt = rel.cpu().numpy(), logits.cpu().numpy(), tgt.cpu().numpy()
        for k in range(stop - start):
            if not np.all(np.isfinite(rel[k])):
                raise FloatingPointError(f"LRP relevance of case {start + k} contains NaN/Inf")
            yield CaseRelevance(start + k, rel[k].astype(np.float32), logits[k].astype(np.float64), int(tgt[k]))
        logger.info("LRP: %d / %d cases", stop, n)
