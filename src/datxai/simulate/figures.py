"""The cohort montage: noise-free activity of example subjects and a sinogram of their camera export."""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

# MNI planes through the striata (mm)
AXIAL_Z_MM = 4.0
CORONAL_Y_MM = 8.0


def sinogram(counts: np.ndarray, angles_deg: np.ndarray, row: int | None = None):
    """One projection row across all views, sorted by angle.

    Parameters
    ----------
    counts : ``(n_frames, n_rows, n_bins)``.
    angles_deg : angle of each frame.
    row : the row; None = the row with the most counts.

    Returns ``(sinogram (n_frames, n_bins), sorted angles, row)``.
    """
    if row is None:
        row = int(np.argmax(counts.sum(axis=(0, 2))))
    order = np.argsort(angles_deg, kind="stable")
    return counts[order, row, :], np.asarray(angles_deg)[order], row


def striatum_row(pose: np.ndarray, n_rows: int, bin_mm: float) -> int:
    """The projection row through the striata (MNI (0, 5, 2) mm mapped by the pose)."""
    from ..geometry import row_positions

    z = (np.asarray(pose) @ np.array([0.0, 5.0, 2.0, 1.0]))[2]
    return int(np.argmin(np.abs(row_positions(n_rows, bin_mm) - z)))


def plot_montage(activity_paths, dicom_paths, truth_paths, subjects, grid_cfg: dict, out_png, labels=None) -> None:
    """Rows = subjects: axial and coronal noise-free activity (MNI, neurological: left on the left) and a sinogram.

    The sinogram row is the one through the striata (from the true pose in ``truth_paths``).
    """
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pydicom

    from ..grid import Grid
    from ..io import atomic_path, load_nifti
    from .dicom import frame_angles_from_header

    grid = Grid.from_config(grid_cfg)
    k = int(np.argmin(np.abs(grid.axis_mm(2) - AXIAL_Z_MM)))
    j = int(np.argmin(np.abs(grid.axis_mm(1) - CORONAL_Y_MM)))
    labels = labels or [""] * len(subjects)
    fig, axes = plt.subplots(len(subjects), 3, figsize=(11, 3.6 * len(subjects)), squeeze=False,
                             layout="constrained")
    vmax = max(load_nifti(p)[0].max() for p in activity_paths)
    ext_ax = [grid.axis_mm(0)[0], grid.axis_mm(0)[-1], grid.axis_mm(1)[0], grid.axis_mm(1)[-1]]
    ext_co = [grid.axis_mm(0)[0], grid.axis_mm(0)[-1], grid.axis_mm(2)[0], grid.axis_mm(2)[-1]]
    for i, (subject, act_path, dcm_path, truth_path, lab) in enumerate(
            zip(subjects, activity_paths, dicom_paths, truth_paths, labels)):
        act, _ = load_nifti(act_path)
        ds = pydicom.dcmread(dcm_path)
        counts = ds.pixel_array.astype(float) * float(getattr(ds, "RescaleSlope", 1.0))
        with open(truth_path) as fh:
            row = striatum_row(json.load(fh)["pose"], int(ds.Rows), float(ds.PixelSpacing[0]))
        sino, ang, row = sinogram(counts, frame_angles_from_header(ds), row)
        a = axes[i]
        im = a[0].imshow(act[:, :, k].T, origin="lower", extent=ext_ax, cmap="magma", vmin=0, vmax=vmax)
        a[0].set(title=f"{subject} ({lab}): axial z = {grid.axis_mm(2)[k]:.0f} mm", xlabel="x (mm, L to R)", ylabel="y (mm)")
        a[1].imshow(act[:, j, :].T, origin="lower", extent=ext_co, cmap="magma", vmin=0, vmax=vmax)
        a[1].set(title=f"coronal y = {grid.axis_mm(1)[j]:.0f} mm", xlabel="x (mm, L to R)", ylabel="z (mm)")
        fig.colorbar(im, ax=a[:2].tolist(), shrink=0.8, label="activity / background")
        a[2].imshow(sino, aspect="auto", cmap="gray", origin="lower",
                    extent=[-0.5, sino.shape[1] - 0.5, ang[0], ang[-1]])
        a[2].set(title=f"sinogram, row {row} ({int(counts.sum()):,} counts)", xlabel="bin", ylabel="angle (deg)")
    fig.suptitle("Synthetic cohort: noise-free activity (MNI, unposed) and the camera's projections")
    with atomic_path(out_png, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    log.info("montage of %s written to %s", ", ".join(subjects), out_png)
