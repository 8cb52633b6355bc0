"""Training of the CNN: Adam, cross-entropy, seeded shuffling, resumable checkpoints.

As in the papers (S1 "Methods"): Adam, learning rate 1e-4, batch size 8,
categorical cross-entropy without class weights; the validation set only
watches overfitting — the final model is the one after the last epoch (no
early stopping, no model selection).

Reproducibility: the initial weights come from ``seed``; every epoch draws its
training order from a NumPy generator seeded from ``seed``; dropout uses
torch's generator, seeded from ``seed`` at the start and carried through
checkpoints. A checkpoint (model, optimizer, both RNG states, history) is
written atomically after every epoch; training that is killed and restarted
with the same arguments resumes from it and ends, on the CPU, with exactly the
weights and history of an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..checks import check_range
from ..config import derive_seed
from ..devices import resolve_device
from ..io import InputError, atomic_path, read_tsv
from .net import CLASSES, DatCNN, build_model, count_parameters, save_model

log = logging.getLogger(__name__)

HISTORY_COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds")
CHECKPOINT_FORMAT = "datxai-checkpoint-1"


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss, unusable checkpoint); the message says why and what is kept."""


# --------------------------------------------------------------------------- data

@dataclass
class Dataset:
    """Images ``x`` (N, nx, ny, nz) float32 (possibly memory-mapped), labels ``y`` (N,) int64 (1 = reduced)."""

    x: np.ndarray
    y: np.ndarray
    subjects: list[str] = field(default_factory=list)
    name: str = "dataset"

    def __post_init__(self):
        self.y = np.array(self.y, dtype=np.int64)  # a writable copy (torch.from_numpy warns on read-only arrays)
        if self.x.ndim != 4:
            raise InputError(f"{self.name}: expected images (N, nx, ny, nz), got shape {self.x.shape}")
        if len(self.y) != self.x.shape[0]:
            raise InputError(f"{self.name}: {self.x.shape[0]} images but {len(self.y)} labels")
        if not np.isin(self.y, (0, 1)).all():
            raise InputError(f"{self.name}: labels y must be 0 (normal) or 1 (reduced), got {sorted(set(self.y.tolist()))}")
        if not self.subjects:
            self.subjects = [f"#{i}" for i in range(len(self.y))]

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.x.shape[1:])


def load_dataset(npy_path, tsv_path, check_finite: bool = True) -> Dataset:
    """Read ``{subset}.npy`` (float32 (N, nx, ny, nz), memory-mapped) and its ``{subset}.tsv``.

    The TSV has one row per image, in the same order: ``subject``, ``label``
    (normal | reduced) and ``y`` (0 | 1). Raises :class:`InputError` naming the
    file for a wrong dtype/shape, a row count that differs, labels and ``y`` that
    disagree, or NaN/Inf voxels (checked in chunks, the array stays on disk).
    """
    npy_path, tsv_path = Path(npy_path), Path(tsv_path)
    if not npy_path.is_file():
        raise InputError(f"{npy_path}: file not found")
    try:
        x = np.load(npy_path, mmap_mode="r")
    except Exception as exc:
        raise InputError(f"{npy_path}: not a readable .npy array ({exc})") from exc
    if x.dtype != np.float32 or x.ndim != 4:
        raise InputError(f"{npy_path}: expected float32 (N, nx, ny, nz), got {x.dtype} {x.shape}")
    table = read_tsv(tsv_path, required=["subject", "label", "y"])
    if len(table) != x.shape[0]:
        raise InputError(f"{tsv_path}: {len(table)} rows but {npy_path.name} holds {x.shape[0]} images")
    expected = table["label"].map({c: i for i, c in enumerate(CLASSES)})
    if expected.isna().any():
        bad = sorted(set(table.loc[expected.isna(), "label"].astype(str)))
        raise InputError(f"{tsv_path}: label must be one of {list(CLASSES)}, got {bad}")
    if not (expected.to_numpy() == table["y"].to_numpy()).all():
        raise InputError(f"{tsv_path}: columns label and y disagree (y must be 0 = normal, 1 = reduced)")
    if check_finite:
        for start in range(0, x.shape[0], 64):
            chunk = np.asarray(x[start:start + 64])
            if not np.isfinite(chunk).all():
                row = start + int(np.nonzero(~np.isfinite(chunk).reshape(len(chunk), -1).all(axis=1))[0][0])
                raise InputError(f"{npy_path}: image {row} ({table['subject'].iloc[row]}) contains NaN or Inf")
    return Dataset(x=x, y=table["y"].to_numpy(), subjects=list(table["subject"].astype(str)), name=str(npy_path))


# --------------------------------------------------------------------------- device

def device_name(device: torch.device) -> str:
    """A readable name of the device actually used (GPU model, or the CPU)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


@contextlib.contextmanager
def _backend_flags(device: torch.device, deterministic: bool):
    """cudnn.benchmark unless deterministic; deterministic algorithms on request; restored afterwards."""
    old = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
           torch.are_deterministic_algorithms_enabled())
    try:
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = not deterministic
            torch.backends.cudnn.deterministic = deterministic
            if deterministic:
                # cuBLAS needs a fixed workspace for reproducible GEMMs
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
                torch.use_deterministic_algorithms(True, warn_only=True)
        yield
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = old[0], old[1]
        torch.use_deterministic_algorithms(old[2])


# --------------------------------------------------------------------------- training

@dataclass
class TrainSettings:
    """Resolved hyperparameters of one training run (the ``train`` config section plus seed)."""

    epochs: int
    learning_rate: float = 1e-4
    batch_size: int = 8
    seed: int = 0
    device: str = "auto"
    deterministic: bool = True
    amp: bool = True

    def __post_init__(self):
        check_range("train.epochs", int(self.epochs), 1)
        check_range("train.batch_size", int(self.batch_size), 1)
        check_range("train.learning_rate", float(self.learning_rate), 0, low_inclusive=False)


def _fingerprint(model: DatCNN, settings: TrainSettings, train: Dataset) -> str:
    """What a checkpoint must match to be resumed: architecture, hyperparameters (not epochs), training data."""
    h = hashlib.sha256()
    s = asdict(settings)
    s.pop("epochs")
    s.pop("device")
    h.update(repr((model.arch, sorted(s.items()), train.shape, len(train), train.y.tolist(), train.subjects)).encode())
    return h.hexdigest()[:16]


def _to_tensor(x: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device, non_blocking=True)


class _Batches:
    """Batches of a dataset: resident on the GPU (one upload), or read from the (memory-mapped) array on the CPU."""

    def __init__(self, data: Dataset, device: torch.device, channels_last: bool):
        self.data, self.device, self.channels_last = data, device, channels_last
        self.y = torch.from_numpy(data.y).to(device)
        self.x = _to_tensor(np.array(data.x), device) if device.type == "cuda" else None  # one upload, kept resident

    def get(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        if self.x is not None:
            ti = torch.from_numpy(idx).to(self.device)
            xb = self.x.index_select(0, ti)
        else:
            ti = torch.from_numpy(idx)
            xb = _to_tensor(self.data.x[np.sort(idx)][np.argsort(np.argsort(idx))], self.device)
        xb = xb.unsqueeze(1)
        if self.channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last_3d)
        return xb, self.y.index_select(0, ti.to(self.y.device))


def adam(params, learning_rate: float) -> torch.optim.Adam:
    """Adam (PyTorch defaults: betas 0.9/0.999, eps 1e-8, no weight decay), with the fused kernel where available.

    The fused kernel does the same update in one pass over the weights. On the
    2-core CPU, for the demo net's 8.9 M parameters, one ``step()`` took 6 ms instead
    of 83 ms and a training step of 8 images 316 ms instead of 402 ms
    (bench/bench_train.py). It rounds differently from the per-tensor loop, so a
    model trained with it differs from one trained without in the last bits.
    """
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=learning_rate, fused=True)
    except (RuntimeError, TypeError, ValueError) as exc:  # a device or an old torch without the fused kernel
        log.debug("fused Adam unavailable (%s); using the per-tensor loop", exc)
        return torch.optim.Adam(params, lr=learning_rate)


def _autocast(device: torch.device, amp: bool):
    if device.type == "cuda" and amp:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def _evaluate(model: nn.Module, batches: _Batches, n: int, batch_size: int, amp: bool) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over a dataset (eval mode: no dropout)."""
    model.eval()
    loss_sum = torch.zeros((), device=batches.device, dtype=torch.float64)
    correct = torch.zeros((), device=batches.device, dtype=torch.int64)
    for start in range(0, n, batch_size):
        xb, yb = batches.get(np.arange(start, min(start + batch_size, n)))
        with _autocast(batches.device, amp):
            logits = model(xb)
        loss_sum += nn.functional.cross_entropy(logits.float(), yb, reduction="sum").double()
        correct += (logits.argmax(1) == yb).sum()
    return float(loss_sum) / n, float(correct) / n


def _rng_state(device: torch.device, shuffle: np.random.Generator) -> dict:
    state = {"torch_cpu": torch.get_rng_state(), "numpy_shuffle": shuffle.bit_generator.state}
    if device.type == "cuda":
        state["torch_cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device: torch.device, shuffle: np.random.Generator) -> None:
    torch.set_rng_state(state["torch_cpu"])
    shuffle.bit_generator.state = state["numpy_shuffle"]
    if device.type == "cuda" and "torch_cuda" in state:
        torch.cuda.set_rng_state(state["torch_cuda"], device)


def _save_checkpoint(path, model, optimizer, epoch, history, rng, fingerprint, settings) -> None:
    payload = {"format": CHECKPOINT_FORMAT, "epoch": epoch, "fingerprint": fingerprint,
               "arch": dict(model.arch), "settings": asdict(settings),
               "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
               "optimizer": optimizer.state_dict(), "rng": rng, "history": history}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _load_checkpoint(path, fingerprint: str, max_epoch: int) -> dict | None:
    """The checkpoint at ``path`` if it belongs to this run (and has at most ``max_epoch`` epochs), else None."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated file cannot occur (atomic writes) but a foreign one can
        log.warning("%s: unreadable checkpoint (%s); starting from scratch", path, exc)
        return None
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT or ck.get("fingerprint") != fingerprint:
        log.warning("%s: checkpoint of a different run (architecture, hyperparameters or data changed); "
                    "starting from scratch", path)
        return None
    if int(ck["epoch"]) > max_epoch:
        log.warning("%s: checkpoint after epoch %d but only %d epochs requested; starting from scratch",
                    path, ck["epoch"], max_epoch)
        return None
    return ck


@dataclass
class TrainResult:
    """The trained model (on the CPU, eval mode), its history rows, and what was used."""

    model: DatCNN
    history: list[dict]
    settings: TrainSettings
    device: str
    resumed_from_epoch: int = 0

    def history_frame(self):
        import pandas as pd

        return pd.DataFrame(self.history, columns=list(HISTORY_COLUMNS))


def train_model(train: Dataset, val: Dataset | None, settings: TrainSettings, *,
                conv_filters: int = 16, n_conv: int = 4, fc_widths=(32, 16), dropout: float = 0.2,
                center_input: bool = False, checkpoint: str | os.PathLike | None = None,
                on_epoch_end: Callable[[int, dict], None] | None = None) -> TrainResult:
    """Train a fresh CNN on ``train``; report ``val`` loss/accuracy per epoch; return the last-epoch model.

    Parameters
    ----------
    train, val
        Images (N, nx, ny, nz) and labels; ``val`` may be None (columns then NaN).
    settings
        Hyperparameters; ``settings.seed`` seeds initialisation, shuffling and dropout.
    conv_filters, n_conv, fc_widths, dropout, center_input
        Architecture (see :func:`datxai.model.build_model`); with ``center_input`` the
        model subtracts the voxel-wise mean of ``train`` (kept in the model).
    checkpoint
        File written atomically after each epoch. If it exists and belongs to the
        same run (architecture, hyperparameters except ``epochs``, training data),
        training resumes after its epoch.
    on_epoch_end
        Called as ``on_epoch_end(epoch, row)`` after the checkpoint of that epoch is written.

    Raises
    ------
    TrainingError
        When the training loss becomes NaN/Inf; the checkpoint of the last good epoch is kept.
    """
    device = resolve_device(settings.device)
    if val is not None and val.shape != train.shape:
        raise InputError(f"{val.name}: image shape {val.shape} differs from the training images {train.shape}")
    model = build_model(train.shape, conv_filters, n_conv, fc_widths, dropout,
                        seed=derive_seed(settings.seed, "init"), center_input=center_input)
    if center_input:
        model.center.set_mean(train.x)
    fingerprint = _fingerprint(model, settings, train)
    # NDHWC memory: cuDNN's tensor-core kernels want it; on the CPU oneDNN's conv3d backward is ~2.5x faster
    # with it than with NCDHW (bench/bench_train.py). The flatten still sees (C, x, y, z) order.
    channels_last = True
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last_3d)
    optimizer = adam(model.parameters(), settings.learning_rate)
    shuffle = np.random.default_rng(derive_seed(settings.seed, "shuffle"))
    history: list[dict] = []
    start_epoch = 1
    fork_devices = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices), _backend_flags(device, settings.deterministic):
        torch.manual_seed(derive_seed(settings.seed, "dropout"))
        ck = _load_checkpoint(checkpoint, fingerprint, settings.epochs) if checkpoint is not None else None
        if ck is not None:
            model.load_state_dict(ck["model"])
            optimizer.load_state_dict(ck["optimizer"])
            _set_rng_state(ck["rng"], device, shuffle)
            history = list(ck["history"])
            start_epoch = int(ck["epoch"]) + 1
            log.info("resuming from %s after epoch %d", checkpoint, ck["epoch"])
        train_batches = _Batches(train, device, channels_last)
        val_batches = _Batches(val, device, channels_last) if val is not None and len(val) else None
        n, bs = len(train), settings.batch_size
        log.info("training %d images of %s on %s for epochs %d..%d (batch %d, lr %g, %d parameters)",
                 n, "x".join(map(str, train.shape)), device_name(device), start_epoch, settings.epochs,
                 bs, settings.learning_rate, count_parameters(model))
        for epoch in range(start_epoch, settings.epochs + 1):
            t0 = time.perf_counter()
            model.train()
            order = shuffle.permutation(n)
            loss_sum = torch.zeros((), device=device, dtype=torch.float64)
            correct = torch.zeros((), device=device, dtype=torch.int64)
            for start in range(0, n, bs):
                xb, yb = train_batches.get(order[start:start + bs])
                with _autocast(device, settings.amp):
                    logits = model(xb)
                loss = nn.functional.cross_entropy(logits.float(), yb)  # mean over the batch, no class weights
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_sum += loss.detach().double() * len(yb)
                correct += (logits.detach().argmax(1) == yb).sum()
            train_loss = float(loss_sum) / n
            if not np.isfinite(train_loss):
                kept = f"the checkpoint of epoch {epoch - 1} is kept at {checkpoint}" if checkpoint and epoch > 1 \
                    else "no checkpoint was written"
                raise TrainingError(f"training loss is {train_loss} in epoch {epoch} (learning rate "
                                    f"{settings.learning_rate}); stopping: {kept}")
            row = {"epoch": epoch, "train_loss": train_loss, "train_accuracy": float(correct) / n}
            if val_batches is not None:
                row["val_loss"], row["val_accuracy"] = _evaluate(model, val_batches, len(val), bs, settings.amp)
            else:
                row["val_loss"] = row["val_accuracy"] = float("nan")
            row["seconds"] = time.perf_counter() - t0
            history.append(row)
            if checkpoint is not None:
                _save_checkpoint(checkpoint, model, optimizer, epoch, history, _rng_state(device, shuffle),
                                 fingerprint, settings)
            log.info("epoch %d/%d: train loss %.4f acc %.3f | val loss %.4f acc %.3f | %.1f s", epoch,
                     settings.epochs, row["train_loss"], row["train_accuracy"], row["val_loss"],
                     row["val_accuracy"], row["seconds"])
            if on_epoch_end is not None:
                on_epoch_end(epoch, row)
    model.to("cpu", memory_format=torch.contiguous_format).eval()
    return TrainResult(model=model, history=history, settings=settings, device=device_name(device),
                       resumed_from_epoch=start_epoch - 1)


def environment() -> dict:
    """Versions and CPU numerics that matter for reproducing a model (:mod:`datxai.numerics`)."""
    from ..numerics import cpu_description, numerics_switches

    model, flags = cpu_description()
    return {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__,
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
            "platform": platform.platform(), "cpu_model": model, "cpu_flags": flags,
            "aten_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
            "numerics_switches": numerics_switches()}


def write_training_outputs(result: TrainResult, model_path, history_path, hyperparameters_path,
                           setting: str | None = None, extra: dict | None = None) -> None:
    """Write ``model.pt``, ``history.tsv`` and ``hyperparameters.json`` (each atomically)."""
    from ..io import write_json, write_tsv

    s = asdict(result.settings)
    save_model(result.model, model_path, setting=setting, seed=s["seed"], epochs=s["epochs"])
    write_tsv(result.history_frame(), history_path)
    hp = {"setting": setting, "architecture": dict(result.model.arch), "n_parameters": count_parameters(result.model),
          "training": {**s, "optimizer": "Adam", "loss": "cross-entropy (no class weights)",
                       "final_model": "last epoch (validation only monitored)"},
          "device_used": result.device, "threads": torch.get_num_threads(),
          "resumed_from_epoch": result.resumed_from_epoch, "versions": environment(), **(extra or {})}
    write_json(hp, hyperparameters_path)


def repeat_seed(master_seed: int, setting: str, repeat: int = 0) -> int:
    """Training seed of one setting: repeat 0 is the study's model; repeats 1, 2, ... get their own seeds."""
    check_range("repeat", int(repeat), 0)
    if int(repeat) == 0:
        return derive_seed(master_seed, "train", setting)
    return derive_seed(master_seed, "train", setting, "repeat", int(repeat))


def run_training(train_npy, train_tsv, val_npy, val_tsv, outputs: dict, model_cfg: dict, train_cfg: dict,
                 setting: str, master_seed: int, resume=None, epochs: int | None = None,
                 fc_widths=None, repeat: int = 0) -> TrainResult:
    """Train one setting from its dataset files and write ``outputs`` (keys model, history, hyperparameters, checkpoint).

    ``model_cfg``/``train_cfg`` are the config sections ``model`` and ``train``; the
    seed of this setting is ``derive_seed(master_seed, "train", setting)`` and, for a
    repeat over seeds (``repeat`` >= 1, config ``train.repeats``), :func:`repeat_seed`. ``resume``
    is the running checkpoint (default: beside ``outputs["checkpoint"]`` in ``resume/``):
    a killed run restarted with the same arguments continues from it; on success it
    is moved onto ``outputs["checkpoint"]``.
    """
    epochs = int(epochs if epochs is not None else train_cfg["epochs"][setting])
    widths = list(fc_widths if fc_widths is not None else model_cfg["fc_widths"][setting])
    settings = TrainSettings(epochs=epochs, learning_rate=float(train_cfg["learning_rate"]),
                             batch_size=int(train_cfg["batch_size"]), seed=repeat_seed(master_seed, setting, repeat),
                             device=train_cfg.get("device", "auto"), deterministic=bool(train_cfg.get("deterministic", True)),
                             amp=bool(train_cfg.get("amp", True)))
    train = load_dataset(train_npy, train_tsv)
    val = load_dataset(val_npy, val_tsv)
    resume = Path(resume) if resume is not None else Path(outputs["checkpoint"]).parent / "resume" / "checkpoint.pt"
    resume.parent.mkdir(parents=True, exist_ok=True)
    result = train_model(train, val, settings, conv_filters=int(model_cfg["conv_filters"]),
                         n_conv=int(model_cfg["n_conv"]), fc_widths=widths, dropout=float(model_cfg["dropout"]),
                         center_input=bool(model_cfg.get("center_input", False)), checkpoint=resume)
    write_training_outputs(result, outputs["model"], outputs["history"], outputs["hyperparameters"], setting=setting,
                           extra={"master_seed": int(master_seed), "repeat": int(repeat),
                                  "n_train": len(train), "n_val": len(val),
                                  "input_shape": list(train.shape)})
    os.replace(resume, outputs["checkpoint"])
    with contextlib.suppress(OSError):
        resume.parent.rmdir()
    return result
