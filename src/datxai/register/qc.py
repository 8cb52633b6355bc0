"""Quality control of the normalisation: montage, registration table, error against a known pose."""

from __future__ import annotations

import logging
from typing import Mapping, Sequence

import numpy as np

from ..geometry import mean_displacement_mm, rigid_affine
from ..grid import Grid
from ..io import InputError, atomic_path

log = logging.getLogger(__name__)

TABLE_COLUMNS = ["subject", "cost", "initial_cost", "correlation", "iterations", "converged", "diverged", "fallback",
                 "flags", "intensity_scale", "zoom_x", "zoom_y", "zoom_z", "determinant"]


def registration_table(records: Mapping[str, dict]):
    """One row per subject from the affine JSONs (``{subject: dict}``), columns :data:`TABLE_COLUMNS`."""
    import pandas as pd

    rows = []
    for subject, d in records.items():
        m = np.asarray(d["matrix"] if d.get("estimated_matrix") is None else d["estimated_matrix"], dtype=float)
        zooms = np.sqrt((m[:3, :3] ** 2).sum(axis=0))
        rows.append({
            "subject": subject, "cost": d.get("cost"), "initial_cost": d.get("initial_cost"),
            "correlation": d.get("correlation"), "iterations": d.get("iterations"),
            "converged": "yes" if d.get("converged") else "no", "diverged": "yes" if d.get("diverged") else "no",
            "fallback": "yes" if d.get("fallback") else "no", "flags": ",".join(d.get("flags", [])) or "none",
            "intensity_scale": d.get("intensity_scale"), "zoom_x": zooms[0], "zoom_y": zooms[1], "zoom_z": zooms[2],
            "determinant": float(np.linalg.det(m[:3, :3])),
        })
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def pose_from_truth(truth: dict, source: str = "truth") -> np.ndarray:
    """The 4x4 pose (``native_mm = pose @ mni_mm``) from a synthetic subject's truth JSON.

    Accepts ``pose`` as a 4x4 list, ``pose: {matrix: 4x4}``, or the rigid
    parameters (``rot_x_deg, rot_y_deg, rot_z_deg, trans_x_mm, trans_y_mm,
    trans_z_mm, head_scale``) at the top level or under ``pose``.
    """
    cand = truth.get("pose", truth)
    if isinstance(cand, dict) and "matrix" in cand:
        cand = cand["matrix"]
    if isinstance(cand, (list, tuple)):
        m = np.asarray(cand, dtype=float)
        if m.shape == (4, 4) and np.all(np.isfinite(m)):
            return m
        raise InputError(f"{source}: 'pose' must be a finite 4x4 matrix, got shape {m.shape}")
    keys = ("rot_x_deg", "rot_y_deg", "rot_z_deg", "trans_x_mm", "trans_y_mm", "trans_z_mm")
    if isinstance(cand, dict) and all(k in cand for k in keys):
        return rigid_affine([cand[k] for k in keys[:3]], [cand[k] for k in keys[3:]], cand.get("head_scale", 1.0))
    raise InputError(f"{source}: no pose found (expected 'pose' as a 4x4 matrix or rigid parameters)")


def registration_errors(estimated: Mapping[str, np.ndarray], poses: Mapping[str, np.ndarray], points_mm: np.ndarray):
    """Displacement (mm) between estimated and true template->native maps over ``points_mm`` ``(n, 3)`` (MNI).

    Returns a DataFrame: subject, mean_displacement_mm, max_displacement_mm,
    true_scale, estimated_scale (cube root of the determinants).
    """
    import pandas as pd

    rows = []
    p = np.c_[points_mm, np.ones(len(points_mm))]
    for subject, m in estimated.items():
        t = poses[subject]
        d = np.linalg.norm((p @ np.asarray(m).T - p @ t.T)[:, :3], axis=1)
        rows.append({"subject": subject, "mean_displacement_mm": mean_displacement_mm(m, t, points_mm),
                     "max_displacement_mm": float(d.max()),
                     "true_scale": float(np.cbrt(np.linalg.det(t[:3, :3]))),
                     "estimated_scale": float(np.cbrt(np.linalg.det(np.asarray(m)[:3, :3])))})
    return pd.DataFrame(rows)


def normalize_montage(template: np.ndarray, images: Sequence[tuple[str, np.ndarray]], grid: Grid, path,
                      levels=(0.35, 0.65), flagged: Sequence[str] = ()) -> None:
    """PNG montage: each normalised image (rows) in three planes through the template's hottest voxel,
    with the template's iso-contours (fractions ``levels`` of its maximum, after 6 mm smoothing) on top.

    Neurological display (subject's left on the left of axial and coronal
    views; images are not yet mirrored). Subjects in ``flagged`` get a red title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from scipy.ndimage import gaussian_filter

    tpl = np.asarray(template, dtype=float)
    tpl = gaussian_filter(tpl, 6.0 / 2.3548 / grid.voxel_mm)  # 6 mm FWHM: smooth contours for display only
    ci, cj, ck = np.unravel_index(int(np.argmax(tpl)), tpl.shape)
    ext = [[grid.axis_mm(a)[0] - grid.voxel_mm / 2, grid.axis_mm(a)[-1] + grid.voxel_mm / 2] for a in range(3)]
    planes = [  # (title, slicer, extent (horizontal, vertical) axes)
        (f"axial z = {grid.axis_mm(2)[ck]:.0f} mm", lambda v: v[:, :, ck], ext[0] + ext[1]),
        (f"coronal y = {grid.axis_mm(1)[cj]:.0f} mm", lambda v: v[:, cj, :], ext[0] + ext[2]),
        (f"sagittal x = {grid.axis_mm(0)[ci]:.0f} mm", lambda v: v[ci, :, :], ext[1] + ext[2]),
    ]
    n = max(1, len(images))
    fig, axes = plt.subplots(n, 3, figsize=(7.5, 2.4 * n + 0.4), squeeze=False)
    lv = [f * tpl.max() for f in levels]
    for row, (subject, img) in enumerate(images or [("template", tpl)]):
        img = np.asarray(img, dtype=float)
        vmax = np.percentile(img, 99.9) or 1.0
        for col, (title, sl, extent) in enumerate(planes):
            ax = axes[row, col]
            ax.imshow(sl(img).T, origin="lower", cmap="gray", vmin=0, vmax=vmax, extent=extent, interpolation="nearest")
            ax.contour(sl(tpl).T, levels=lv, colors=["tab:orange", "tab:red"], linewidths=0.8, origin="lower", extent=extent)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(title, fontsize=8)
            if col == 0:
                ax.set_ylabel(subject, fontsize=8, color="red" if subject in flagged else "black")
    fig.suptitle("Normalised images with the template contour (L on the left)", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / (2.4 * n + 0.4)))
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def montage_subjects(subjects: Sequence[str], n: int = 8, flagged: Sequence[str] = ()) -> list[str]:
    """Which subjects to show: every flagged one first, then evenly spaced others, ``n`` at most (deterministic)."""
    subjects = list(subjects)
    chosen = [s for s in subjects if s in set(flagged)][:n]
    rest = [s for s in subjects if s not in set(chosen)]
    k = n - len(chosen)
    if k > 0 and rest:
        idx = np.unique(np.linspace(0, len(rest) - 1, min(k, len(rest))).round().astype(int))
        chosen += [rest[i] for i in idx]
    return chosen
