"""Figures of the relevance analysis (S1 Figs 1-3), matplotlib on the analysis grid.

Transversal (axial) slices are drawn in MNI mm with x to the right, so the
ipsilateral hemisphere (x < 0 after mirroring) is on the LEFT of each panel,
marked ``I``, and the contralateral one on the right, ``C``.
Relevance colour scales are symmetric about zero (red positive, blue negative).
"""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)


def save_figure(fig, path, dpi: int = 150) -> None:
    """Save atomically as PNG and close."""
    import matplotlib.pyplot as plt

    from ..io import atomic_path

    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    plt.close(fig)


def sym_limit(*arrays, q: float = 99.5) -> float:
    """Symmetric colour limit: the ``q`` th percentile of |values| (> 0)."""
    vals = np.concatenate([np.abs(np.asarray(a, float)).ravel() for a in arrays])
    lim = float(np.percentile(vals, q)) if vals.size else 1.0
    return lim if lim > 0 else (float(vals.max()) if vals.size and vals.max() > 0 else 1.0)


def slice_index(grid, z_mm: float) -> int:
    """Index along z of the slice nearest to ``z_mm``."""
    return int(np.argmin(np.abs(grid.axis_mm(2) - z_mm)))


def striatum_z(atlas) -> float:
    """z (mm) of the transversal slice holding most striatum voxels."""
    counts = atlas.striatum_mask.sum(axis=(0, 1))
    return float(atlas.grid.axis_mm(2)[int(np.argmax(counts))])


def _extent(grid):
    v = grid.voxel_mm
    x, y = grid.axis_mm(0), grid.axis_mm(1)
    return [x[0] - v / 2, x[-1] + v / 2, y[0] - v / 2, y[-1] + v / 2]


def axial(ax, vol: np.ndarray, grid, z_mm: float, mark_sides: bool = True, **imshow_kw):
    """Draw the transversal slice nearest ``z_mm`` of ``vol`` (grid shape) in MNI mm; returns the image."""
    k = slice_index(grid, z_mm)
    im = ax.imshow(np.ma.asanyarray(vol)[:, :, k].T, origin="lower", extent=_extent(grid), interpolation="nearest",
                   **imshow_kw)
    ax.set_xticks([])
    ax.set_yticks([])
    if mark_sides:
        for x, t in ((0.03, "I"), (0.97, "C")):
            ax.text(x, 0.97, t, transform=ax.transAxes, ha="center", va="top", fontsize=9, fontweight="bold",
                    color="k", bbox={"facecolor": "w", "alpha": 0.6, "lw": 0, "pad": 1})
    return im


def _box_outline(ax, box_mm, z_mm, **kw):
    (x0, x1), (y0, y1), (z0, z1) = box_mm
    if z0 <= z_mm <= z1:
        ax.plot([x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0], **kw)


def plot_group_maps(groups: dict, grid, z_mm: float, path) -> None:
    """Fig 1: per setting (rows) mean TP, mean TN and heat = TP - TN (columns), one transversal slice."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(groups), 3, figsize=(8.4, 2.9 * len(groups)), squeeze=False)
    for row, (setting, g) in zip(axes, groups.items()):
        lim = sym_limit(g["mean_tp"], g["mean_tn"])
        for ax, key, title in zip(row, ("mean_tp", "mean_tn", "heat"),
                                  (f"mean TP (n={g['n_tp']})", f"mean TN (n={g['n_tn']})", "heat = TP - TN")):
            v = lim if key != "heat" else sym_limit(g["heat"])
            im = axial(ax, g[key], grid, z_mm, cmap="RdBu_r", vmin=-v, vmax=v)
            ax.set_title(f"{setting}: {title}", fontsize=9)
            fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    fig.suptitle(f"Mean relevance of correctly classified test cases, z = {z_mm:.0f} mm (I / C)", fontsize=10)
    save_figure(fig, path)


def plot_heat_striatum(heats: dict, grid, z_mm: float, path, t1: np.ndarray | None = None) -> None:
    """Fig 2: transversal slice through the striatum of each setting's heat map, I / C marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(heats), figsize=(4.0 * len(heats), 3.4), squeeze=False)
    for ax, (setting, h) in zip(axes[0], heats.items()):
        if t1 is not None:
            axial(ax, t1, grid, z_mm, mark_sides=False, cmap="gray")
        v = sym_limit(h)
        im = axial(ax, h, grid, z_mm, cmap="RdBu_r", vmin=-v, vmax=v, alpha=0.7 if t1 is not None else 1.0)
        ax.set_title(setting, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02, label="heat (TP - TN)")
    fig.suptitle(f"Heat maps, transversal slice through the striatum (z = {z_mm:.0f} mm)", fontsize=10)
    save_figure(fig, path)


def plot_thresholded_heat(heats: dict, clusters: dict, thresholds: dict, grid, t1: np.ndarray, box_mm, path,
                          z_list_mm=None, colorbar_label: str = "heat (TP - TN), clusters only") -> None:
    """Fig 3: cluster voxels (heat above threshold) over the MNI152 T1, several slices, settings side by side.

    The striatum box (excluded from the threshold) is outlined where a slice cuts it.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if z_list_mm is None:
        z = grid.axis_mm(2)
        z_list_mm = np.linspace(max(z[0], -36.0), min(z[-1], 60.0), 6)
    settings = list(heats)
    fig, axes = plt.subplots(len(settings), len(z_list_mm), figsize=(2.3 * len(z_list_mm), 2.9 * len(settings)),
                             squeeze=False)
    vmax = max(float(np.max(np.where(clusters[s] > 0, np.abs(heats[s]), 0), initial=0)) for s in settings) or 1.0
    negative = any(np.any((clusters[s] > 0) & (heats[s] < 0)) for s in settings)
    # clusters of negative heat (group.heat_sign negative | both): a diverging scale, blue = TN above TP
    cmap, vmin = ("RdBu_r", -vmax) if negative else ("hot", 0.0)
    for j, s in enumerate(settings):
        over = np.ma.masked_where(clusters[s] <= 0, heats[s])
        for i, zmm in enumerate(z_list_mm):
            ax = axes[j, i]
            axial(ax, t1, grid, zmm, mark_sides=True, cmap="gray")
            im = axial(ax, over, grid, zmm, mark_sides=False, cmap=cmap, vmin=vmin, vmax=vmax)
            _box_outline(ax, box_mm, zmm, color="c", lw=1, ls="--")
            ax.set_title(f"{s}, z = {zmm:.0f} mm" + (f"\nthreshold {thresholds[s]:.3g}" if i == 0 else ""), fontsize=8)
    fig.colorbar(im, ax=axes, fraction=0.02, pad=0.01, label=colorbar_label)
    save_figure(fig, path)
