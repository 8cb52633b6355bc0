"""The 3-D CNN of the DAT-SPECT studies (S1: Nazari et al. 2021; S2: Nazari et al. 2022).

Architecture (S1/S2, "Methods"): ``n_conv`` convolutions of ``conv_filters``
filters, 3 x 3 x 3 voxels, stride 1, dilation 1, zero padding that keeps the
shape ("same"), each followed by a ReLU; no pooling; the feature map is
flattened in (C, x, y, z) order and passed through fully connected layers of
``fc_widths`` with ReLU, dropout after the first of them only, and a final
Linear with 2 outputs (logits; index 0 = normal, 1 = reduced). The softmax of
the papers is applied only where probabilities are needed (:func:`probabilities`),
so that cross-entropy and LRP both start from logits.

Optional input centring (``center_input``, not in the papers): the first
operation subtracts a fixed mean image (buffer ``center.mean``, shape
``(1, 1, nx, ny, nz)``, set by training to the voxel-wise mean of the training
images). FP-CIT images are positive everywhere, so without it every ReLU feature
is positive and Adam's near-uniform steps on the ~10^5-10^6 inputs of ``fc1``
move all of its pre-activations together by ``lr * sum(features)`` per step; on
small cohorts training then flips between predicting one class and the other
(measured on the demo: train accuracy 0.48 <-> 1.00 between epochs). The
subtraction has an identity gradient, so LRP passes relevance through it
unchanged; it only changes the activations the rules see.

Module names are a contract with :mod:`datxai.explain`::

    center (only with center_input),
    features.conv1, features.relu1, ..., features.conv4, features.relu4,
    flatten,
    classifier.fc1, classifier.fc_relu1, classifier.dropout,
    classifier.fc2, classifier.fc_relu2, ..., classifier.out

Parameter counts (input on the paper's 2 mm grid, 71 x 90 x 72, FC 32 -> 16):
235,582,786 (S1 quotes 236 M); the 61 x 44 x 35 striatum crop gives 48.1 M
with FC1 = 32 and 24.1 M with FC1 = 16 (S1 quotes 25 M).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from ..checks import check_range

log = logging.getLogger(__name__)

#: Class index -> visual read. Index 1 ("reduced") is the positive class.
CLASSES = ("normal", "reduced")


def _check_arch(input_shape, conv_filters, n_conv, fc_widths, dropout, center_input=False) -> dict:
    """Validate the architecture arguments; return them normalised (plain ints/floats/lists)."""
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"input_shape must be 3 positive ints (nx, ny, nz), got {tuple(input_shape)}")
    check_range("model.conv_filters", int(conv_filters), 1)
    check_range("model.n_conv", int(n_conv), 1)
    widths = [int(w) for w in fc_widths]
    if not widths or min(widths) < 1:
        raise ValueError(f"fc_widths must be a non-empty list of positive ints, got {list(fc_widths)}")
    check_range("model.dropout", float(dropout), 0.0, 1.0, high_inclusive=False)
    return {"input_shape": list(shape), "conv_filters": int(conv_filters), "n_conv": int(n_conv),
            "fc_widths": widths, "dropout": float(dropout), "center_input": bool(center_input)}


class InputCentering(nn.Module):
    """``x - mean`` with a fixed mean image ``(1, 1, nx, ny, nz)`` (a buffer: saved with the weights, not trained).

    ``lrp_pass_through``: relevance passes through unchanged (the gradient is the identity).
    """

    lrp_pass_through = True

    def __init__(self, input_shape: Sequence[int]):
        super().__init__()
        self.register_buffer("mean", torch.zeros((1, 1, *[int(s) for s in input_shape])))

    @torch.no_grad()
    def set_mean(self, images) -> None:
        """Set the mean from images ``(N, nx, ny, nz)`` (NumPy, possibly memory-mapped; averaged in float64 chunks)."""
        import numpy as np

        n = int(images.shape[0])
        if n < 1 or tuple(images.shape[1:]) != tuple(self.mean.shape[2:]):
            raise ValueError(f"input centring: expected images (N >= 1, {tuple(self.mean.shape[2:])}), got {tuple(images.shape)}")
        acc = np.zeros(images.shape[1:], dtype=np.float64)
        for start in range(0, n, 64):
            acc += np.asarray(images[start:start + 64], dtype=np.float64).sum(axis=0)
        self.mean.copy_(torch.from_numpy(acc / n).reshape(self.mean.shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - self.mean


class DatCNN(nn.Module):
    """The papers' CNN. Input ``(N, 1, nx, ny, nz)`` float32; output logits ``(N, 2)``.

    Use :func:`build_model` to construct it (validation, seeded initialisation).
    ``self.arch`` holds the keyword arguments that rebuild it.
    """

    def __init__(self, input_shape: Sequence[int], conv_filters: int = 16, n_conv: int = 4,
                 fc_widths: Sequence[int] = (32, 16), dropout: float = 0.2, center_input: bool = False):
        super().__init__()
        self.arch = _check_arch(input_shape, conv_filters, n_conv, fc_widths, dropout, center_input)
        if self.arch["center_input"]:
            self.center = InputCentering(self.arch["input_shape"])
        f = self.arch["conv_filters"]
        layers = OrderedDict()
        for i in range(1, self.arch["n_conv"] + 1):
            # padding=1 is "same" for a 3x3x3 kernel at stride 1 (written as an int so that
            # transposed-convolution LRP implementations can reuse module.padding).
            layers[f"conv{i}"] = nn.Conv3d(1 if i == 1 else f, f, kernel_size=3, stride=1, padding=1, dilation=1)
            layers[f"relu{i}"] = nn.ReLU()
        self.features = nn.Sequential(layers)
        self.flatten = nn.Flatten(start_dim=1)
        n_features = f * self.arch["input_shape"][0] * self.arch["input_shape"][1] * self.arch["input_shape"][2]
        fc = OrderedDict()
        width_in = n_features
        for j, width in enumerate(self.arch["fc_widths"], start=1):
            fc[f"fc{j}"] = nn.Linear(width_in, width)
            fc[f"fc_relu{j}"] = nn.ReLU()
            if j == 1:
                fc["dropout"] = nn.Dropout(p=self.arch["dropout"])
            width_in = width
        fc["out"] = nn.Linear(width_in, len(CLASSES))
        self.classifier = nn.Sequential(fc)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.arch["input_shape"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, 2)`` for images ``(N, 1, nx, ny, nz)`` (or ``(N, nx, ny, nz)``, a channel is added)."""
        if x.dim() == 4:
            x = x.unsqueeze(1)
        if tuple(x.shape[2:]) != self.input_shape or x.shape[1] != 1:
            raise ValueError(f"expected input (N, 1, {', '.join(map(str, self.input_shape))}), got {tuple(x.shape)}")
        if self.arch["center_input"]:
            x = self.center(x)
        return self.classifier(self.flatten(self.features(x)))


def build_model(input_shape: Sequence[int], conv_filters: int = 16, n_conv: int = 4,
                fc_widths: Sequence[int] = (32, 16), dropout: float = 0.2, seed: int | None = None,
                device: str | torch.device | None = None, center_input: bool = False) -> DatCNN:
    """Build the CNN for images of ``input_shape`` voxels ``(nx, ny, nz)``.

    Weights are Glorot-uniform and biases zero (the Keras defaults the papers'
    implementation used). PyTorch's own default (Kaiming-uniform with a = sqrt(5))
    shrinks the activation variance ~6x per conv + ReLU layer, so after four
    layers the 3-D net barely trains on small cohorts. ``seed`` makes the
    initialisation deterministic without touching the caller's global RNG.
    ``device="meta"`` builds it without allocating memory (parameter counting).
    """
    kwargs = _check_arch(input_shape, conv_filters, n_conv, fc_widths, dropout, center_input)
    if str(device) == "meta":
        with torch.device("meta"):
            return DatCNN(**kwargs)
    if seed is None:
        model = _glorot_init(DatCNN(**kwargs))
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            model = _glorot_init(DatCNN(**kwargs))
    return model.to(device) if device is not None else model


def _glorot_init(model: nn.Module) -> nn.Module:
    """Glorot-uniform weights and zero biases for every Conv3d and Linear layer (in place)."""
    for module in model.modules():
        if isinstance(module, (nn.Conv3d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return model


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``model``."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only))


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over the 2 classes: ``(N, 2)`` logits -> ``(N, 2)`` probabilities (float32)."""
    return torch.softmax(logits.float(), dim=1)


MODEL_FORMAT = "datxai-cnn-1"


def save_model(model: DatCNN, path, **meta) -> None:
    """Write ``model`` (state_dict on the CPU + ``arch`` + ``meta``) atomically as a torch file."""
    from ..io import atomic_path

    state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    payload = {"format": MODEL_FORMAT, "arch": dict(model.arch), "classes": list(CLASSES),
               "state_dict": state, "meta": meta}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_model(path, map_location: str | torch.device = "cpu") -> tuple[DatCNN, dict]:
    """Rebuild the model saved by :func:`save_model`; return ``(model in eval mode, info)``.

    ``info`` holds ``arch`` (the build kwargs, ``input_shape`` included), ``classes``
    and whatever meta data training stored (setting, seed, epochs, ...).
    """
    from ..io import InputError

    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError as exc:
        raise InputError(f"{path}: model file not found") from exc
    except Exception as exc:
        raise InputError(f"{path}: not a readable torch model file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise InputError(f"{path}: not a datxai model (expected format {MODEL_FORMAT!r})")
    model = DatCNN(**payload["arch"])
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise InputError(f"{path}: weights do not fit the stored architecture ({exc})") from exc
    model.to(map_location).eval()
    info = {"arch": payload["arch"], "classes": payload["classes"], **payload.get("meta", {})}
    return model, info
