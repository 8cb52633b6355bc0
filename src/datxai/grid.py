"""The MNI analysis grid shared by every MNI-space image of a run.

Conventions
-----------
* Arrays are indexed ``(i, j, k)`` = (x, y, z) and stored RAS+: the affine is
  diagonal with positive voxel sizes, so ``i`` runs from the subject's left
  (x < 0) to right, ``j`` posterior to anterior, ``k`` inferior to superior.
* The grid is centred on ``x = 0`` so that flipping axis 0 mirrors the image
  at the midsagittal plane (needed for the ipsilateral/contralateral mirroring).
* Millimetres throughout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .checks import check_range


@dataclass(frozen=True)
class Grid:
    """A regular RAS+ grid.

    Parameters
    ----------
    shape : (nx, ny, nz) voxels.
    voxel_mm : isotropic voxel size in mm.
    center_mm : MNI coordinate (mm) of the grid's centre; x must be 0.
    """

    shape: tuple[int, int, int]
    voxel_mm: float
    center_mm: tuple[float, float, float] = (0.0, -18.0, 11.0)

    def __post_init__(self):
        if len(self.shape) != 3 or any(int(n) < 2 for n in self.shape):
            raise ValueError(f"grid.shape must be three integers >= 2, got {self.shape!r}")
        check_range("grid.voxel_mm", self.voxel_mm, 0, low_inclusive=False)
        if abs(self.center_mm[0]) > 1e-9:
            raise ValueError(
                f"grid.center_mm[0] must be 0 so that the grid is symmetric about x = 0, "
                f"got {self.center_mm[0]!r}"
            )
        object.__setattr__(self, "shape", tuple(int(n) for n in self.shape))
        object.__setattr__(self, "center_mm", tuple(float(c) for c in self.center_mm))

    @classmethod
    def from_config(cls, cfg: dict) -> "Grid":
        """Build from the ``grid`` section of the config."""
        return cls(tuple(cfg["shape"]), float(cfg["voxel_mm"]), tuple(cfg.get("center_mm", (0, -18, 11))))

    @property
    def affine(self) -> np.ndarray:
        """4x4 voxel-to-MNI-mm affine (RAS+)."""
        a = np.diag([self.voxel_mm] * 3 + [1.0])
        a[:3, 3] = np.asarray(self.center_mm) - self.voxel_mm * (np.asarray(self.shape) - 1) / 2.0
        return a

    @property
    def voxel_ml(self) -> float:
        """Volume of one voxel in ml (cm^3)."""
        return self.voxel_mm**3 / 1000.0

    def axis_mm(self, axis: int) -> np.ndarray:
        """MNI coordinates (mm) of the voxel centres along one axis."""
        n = self.shape[axis]
        return self.center_mm[axis] + self.voxel_mm * (np.arange(n) - (n - 1) / 2.0)

    def coords_mm(self) -> np.ndarray:
        """MNI coordinates of every voxel centre, shape ``(3, nx, ny, nz)``."""
        return np.stack(np.meshgrid(*(self.axis_mm(a) for a in range(3)), indexing="ij"))

    def mm_to_index(self, xyz_mm) -> np.ndarray:
        """Continuous voxel indices of MNI points ``(..., 3)``."""
        xyz = np.asarray(xyz_mm, dtype=float)
        inv = np.linalg.inv(self.affine)
        return xyz @ inv[:3, :3].T + inv[:3, 3]

    def box_slices(self, box_mm) -> tuple[slice, slice, slice]:
        """Index slices of the voxels whose centres lie inside an mm box.

        ``box_mm`` is ``[[xmin, xmax], [ymin, ymax], [zmin, zmax]]`` in MNI mm.
        Raises ValueError when the box does not overlap the grid.
        """
        out = []
        for ax, (lo, hi) in enumerate(box_mm):
            c = self.axis_mm(ax)
            idx = np.nonzero((c >= lo - 1e-6) & (c <= hi + 1e-6))[0]
            if idx.size == 0:
                raise ValueError(
                    f"box {box_mm!r} does not overlap the grid on axis {'xyz'[ax]} "
                    f"({c[0]:.1f} .. {c[-1]:.1f} mm)"
                )
            out.append(slice(int(idx[0]), int(idx[-1]) + 1))
        return tuple(out)

    def to_dict(self) -> dict:
        return {"shape": list(self.shape), "voxel_mm": self.voxel_mm, "center_mm": list(self.center_mm)}


def resample_to_grid(data: np.ndarray, affine: np.ndarray, grid: Grid, order: int = 1, cval: float = 0.0) -> np.ndarray:
    """Resample an image given by ``data``/``affine`` onto ``grid``.

    Linear interpolation (``order=1``) by default; for downsampling by a large
    factor, pre-smooth or use :func:`average_to_grid`.
    """
    from scipy.ndimage import map_coordinates

    vox2src = np.linalg.inv(affine) @ grid.affine
    ijk = np.stack(np.meshgrid(*(np.arange(n) for n in grid.shape), indexing="ij"), axis=-1).reshape(-1, 3)
    src = ijk @ vox2src[:3, :3].T + vox2src[:3, 3]
    out = map_coordinates(np.asarray(data, dtype=np.float32), src.T, order=order, mode="constant", cval=cval)
    return out.reshape(grid.shape)


def _box_weights(src_centres: np.ndarray, src_width: float, dst_centres: np.ndarray, dst_width: float) -> np.ndarray:
    """``(n_dst, n_src)`` weights: overlap of each destination box with each source box / destination width."""
    lo = np.maximum(dst_centres[:, None] - dst_width / 2, src_centres[None, :] - src_width / 2)
    hi = np.minimum(dst_centres[:, None] + dst_width / 2, src_centres[None, :] + src_width / 2)
    return (np.clip(hi - lo, 0, None) / dst_width).astype(np.float32)


def average_to_grid(data: np.ndarray, affine: np.ndarray, grid: Grid) -> np.ndarray:
    """Area-weighted (box) resampling of an axis-aligned image onto ``grid``.

    Each output voxel is the volume-weighted mean of the source voxels it
    overlaps, so probability maps stay fractions in [0, 1] and a constant image
    stays constant inside the source's field of view (zero outside). Separable:
    one ``(n_dst, n_src)`` matrix per axis. Images whose affine is not
    axis-aligned fall back to Gaussian pre-smoothing and linear interpolation.
    """
    data = np.asarray(data, dtype=np.float32)
    rot = affine[:3, :3]
    if not np.allclose(rot, np.diag(np.diag(rot)), atol=1e-6):
        from scipy.ndimage import gaussian_filter

        src_vox = np.sqrt((rot**2).sum(axis=0))
        sigma = np.sqrt(np.maximum(grid.voxel_mm**2 - src_vox**2, 0.0) / 12.0) / src_vox
        return resample_to_grid(gaussian_filter(data, sigma=sigma), affine, grid, order=1)
    out = data
    for ax in range(3):
        step = affine[ax, ax]
        src = affine[ax, 3] + step * np.arange(data.shape[ax])
        w = _box_weights(src, abs(step), grid.axis_mm(ax), grid.voxel_mm)
        out = np.moveaxis(np.tensordot(w, np.moveaxis(out, ax, 0), axes=(1, 0)), 0, ax)
    return out.astype(np.float32)
