"""Which torch device a stage runs on: the config's ``auto | cpu | cuda``."""

from __future__ import annotations

from .checks import check_choice


def resolve_device(name: str = "auto", key: str = "train.device"):
    """``auto`` -> cuda when available else cpu; ``cuda`` without a GPU is an error naming ``key``.

    Returns a ``torch.device``.
    """
    import torch

    check_choice(key, name, ("auto", "cpu", "cuda"))
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{key} is 'cuda' but no CUDA device is available (use 'auto' or 'cpu')")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)
