"""File input/output with the project's contracts.

* Outputs are written whole or not at all: each writer writes to a temporary
  file in the destination folder and renames it (atomic on POSIX).
* Inputs are never modified; readers validate and name the file in errors.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np


class InputError(ValueError):
    """Bad input: the message names the file (or subject/key) and the problem."""


@contextlib.contextmanager
def atomic_path(path, suffix: str | None = None):
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success, delete it on error.

    ``suffix`` defaults to the full suffix of ``path`` (``.nii.gz``) so that
    libraries that infer the format from the name keep working.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = suffix if suffix is not None else "".join(path.suffixes)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name.split('.')[0]}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp creates 0600; give the file the permissions a plain open() would
        umask = os.umask(0)
        os.umask(umask)
        if os.path.exists(tmp):
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def save_nifti(data: np.ndarray, affine: np.ndarray, path, dtype=np.float32, header_extra: dict | None = None) -> Path:
    """Write a 3-D (or 4-D) array as NIfTI atomically. Returns the path."""
    import nibabel as nib

    data = np.asarray(data)
    if not np.all(np.isfinite(data)):
        raise ValueError(f"refusing to write {path}: the image contains NaN or Inf")
    img = nib.Nifti1Image(data.astype(dtype), np.asarray(affine, dtype=float))
    img.header.set_xyzt_units("mm")
    img.set_qform(img.affine, code=1)
    img.set_sform(img.affine, code=4 if header_extra and header_extra.get("mni") else 1)
    with atomic_path(path) as tmp:
        nib.save(img, tmp)
    return Path(path)


def load_nifti(path, shape: tuple | None = None, allow_zero: bool = False):
    """Read a NIfTI image and check it. Returns ``(data float32, affine)``.

    A single volume stored as 4-D, ``(x, y, z, 1)``, is read as 3-D. Raises
    :class:`InputError` naming the file for: unreadable or corrupt file, a
    series of volumes, wrong shape (when ``shape`` is given), non-invertible
    affine, NaN/Inf voxels, or an all-zero image (unless ``allow_zero``).
    """
    import nibabel as nib

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        img = nib.load(str(path))
        data = np.asarray(img.dataobj, dtype=np.float32)
    except Exception as exc:  # nibabel raises many types for corrupt files
        raise InputError(f"{path}: not a readable NIfTI image ({type(exc).__name__}: {exc})") from exc
    if data.ndim > 3 and all(n == 1 for n in data.shape[3:]):  # (x, y, z, 1): one volume written as 4-D
        data = data.reshape(data.shape[:3])
    if data.ndim != 3:
        raise InputError(f"{path}: expected a 3-D image, got shape {data.shape}"
                         + (" (a series of volumes: give one)" if data.ndim == 4 else ""))
    if shape is not None and tuple(data.shape) != tuple(shape):
        raise InputError(f"{path}: expected shape {tuple(shape)}, got {data.shape}")
    aff = img.affine
    if not np.all(np.isfinite(aff)) or abs(np.linalg.det(aff[:3, :3])) < 1e-9:
        raise InputError(f"{path}: the affine is not invertible:\n{aff}")
    bad = ~np.isfinite(data)
    if bad.any():
        raise InputError(f"{path}: {int(bad.sum())} voxels are NaN or Inf")
    if not allow_zero and not np.any(data):
        raise InputError(f"{path}: the image is all zero")
    return data, aff


def write_tsv(df, path) -> Path:
    """Write a pandas DataFrame as TSV (header, no index) atomically."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    return Path(path)


def read_tsv(path, required: list[str] | None = None):
    """Read a TSV with a header; check required columns; ids stay strings."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        df = pd.read_csv(path, sep="\t", dtype={"subject": str})
    except Exception as exc:
        raise InputError(f"{path}: not a readable TSV ({exc})") from exc
    missing = [c for c in (required or []) if c not in df.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {missing}; has {list(df.columns)}")
    return df


def write_json(obj, path) -> Path:
    """Write JSON (sorted keys, indented) atomically; numpy scalars/arrays are converted."""

    def default(o):
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, Path):
            return str(o)
        raise TypeError(f"not JSON serialisable: {type(o).__name__}")

    with atomic_path(path) as tmp:
        with open(tmp, "w") as fh:
            json.dump(obj, fh, indent=2, sort_keys=True, default=default)
            fh.write("\n")
    return Path(path)


def save_npy(arr: np.ndarray, path) -> Path:
    """Write a .npy array atomically (memory-mappable with ``np.load(mmap_mode='r')``)."""
    with atomic_path(path) as tmp:
        np.save(tmp, arr)
    return Path(path)
