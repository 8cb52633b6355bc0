"""One study: DICOM projections -> FBP (optionally Chang-corrected) -> native NIfTI."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..config import section_defaults
from ..geometry import native_affine
from ..io import save_nifti
from .attenuation import chang_correct
from .dicom import Projections, read_projections
from .fbp import reconstruct_frames

log = logging.getLogger(__name__)

DEFAULTS = section_defaults("reconstruct")
"""``config['reconstruct']``'s defaults, read from the config schema (the one source of defaults)."""


def resolve_params(params: dict | None) -> dict:
    """``config['reconstruct']`` with defaults filled; unknown keys are an error."""
    params = dict(params or {})
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"reconstruct: unknown key(s) {unknown}; allowed {sorted(DEFAULTS)}")
    return {**DEFAULTS, **params}


def reconstruct_projections(proj: Projections, params: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Reconstruct a native volume ``(m, m, n_rows)`` (float32, RAS+) and its 4x4 affine (mm).

    ``params`` are the keys of ``config['reconstruct']`` (see :data:`DEFAULTS`).
    The frames are taken as line integrals (value * mm), so the image is in
    projection units per mm (counts per bin per mm of path).
    """
    p = resolve_params(params)
    vol = reconstruct_frames(
        proj.frames, proj.angles_deg, proj.bin_mm,
        filter_name=p["filter"], cutoff_cycles_per_cm=p["cutoff_cycles_per_cm"],
        output_size=p["output_size"], interpolation=p["interpolation"],
    )
    if p["attenuation_correction"]:
        vol, _ = chang_correct(vol, proj.bin_mm, p["mu_per_cm"], threshold=p["body_threshold"])
    m = vol.shape[0]
    return vol.astype(np.float32), native_affine(m, proj.n_rows, proj.bin_mm, proj.first_row_z_mm)


def reconstruct_file(dicom_path, out_path, params: dict | None = None) -> dict:
    """Read ``dicom_path``, reconstruct, write ``out_path`` (NIfTI, atomic). Returns a geometry summary.

    Nothing from the DICOM header but the acquisition geometry reaches the
    output (the NIfTI header carries no description).
    """
    p = resolve_params(params)
    proj = read_projections(dicom_path, energy_window=p["energy_window"])
    vol, affine = reconstruct_projections(proj, p)
    save_nifti(vol, affine, out_path)
    summary = {**proj.summary(), "shape": list(vol.shape), "params": p,
               "image_min": float(vol.min()), "image_max": float(vol.max())}
    log.info("wrote %s: shape %s, voxel %.3f mm, range %.4g..%.4g", Path(out_path).name, vol.shape,
             proj.bin_mm, summary["image_min"], summary["image_max"])
    return summary


