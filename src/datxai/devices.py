"""Which torch device a stage runs on: the config's ``auto | cpu | cuda``."""

from __future__ import annotations


def resolve_device(name: str = "auto", key: str = "train.device"):
    """``auto`` -> cuda when available else cpu; ``cuda`` without a GPU is an error naming ``key``.

    Returns a ``torch.device``.
    """
    import torch

    if name not in ("auto", "cpu", "cuda"):
        raise ValueError(f"{key} must be auto, cpu or cuda, got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{key} is 'cuda' but no CUDA device is available (use 'auto' or 'cpu')")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)
