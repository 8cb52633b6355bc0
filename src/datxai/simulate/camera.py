"""Forward projector of a parallel-hole SPECT camera (the definition in :mod:`datxai.geometry`).

For every view angle ``theta`` the MNI-space activity is resampled (one
trilinear ``affine_transform``; the pose and the view rotation composed) onto
a *view grid* ``(bin b, depth k, row r)`` whose mm coordinates are ``s_b``
(detector bin, along ``u(theta)``), ``t_k`` (depth along the detector
direction ``d(theta)``, towards the detector) and ``z_r`` (row; row 0
superior), i.e. native RAS (DICOM's angle: 0 posterior, 90 the patient's left)::

    x = s cos(theta) - t sin(theta),   y = -s sin(theta) - t cos(theta),   z = z_r

Per view:

1. attenuation: ``exp(-integral of mu from the point towards +d)``, a reversed
   cumulative sum over depth of the resampled head outline times ``mu``
   (water-like: uniform inside the head);
2. depth-dependent collimator blur: each depth plane ``(b, r)`` is blurred by
   a Gaussian of ``FWHM(D) = fwhm_100 + slope (D - 100 mm)`` where
   ``D = radius - t`` is the distance to the collimator face, integrated over
   each detector bin (two small matrix products per plane);
3. the planes are summed (times the depth step): the line integral.

Only the part of the view grid that can hold the (posed) object is sampled,
which keeps the paper scale (128 bins, 120 views) practical.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import numpy as np

from .. import geometry
from ..checks import check_choice, check_range
from ..grid import Grid

log = logging.getLogger(__name__)

FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


@dataclass(frozen=True)
class Camera:
    """Acquisition geometry (mm, degrees). ``n_rows = n_bins``; ``n_views`` in total over all heads."""

    n_bins: int = 64
    bin_mm: float = 4.5
    n_views: int = 60
    n_heads: int = 2
    rotation: str = "CW"
    collimator_fwhm_mm: float = 10.0
    collimator_fwhm_slope: float = 0.04
    radius_mm: float = 150.0
    mu_per_cm: float = 0.11
    start_angle_deg: float = 0.0

    def __post_init__(self):
        if self.n_views % self.n_heads:
            raise ValueError(f"simulate.camera.n_views ({self.n_views}) must be a multiple of n_heads ({self.n_heads})")
        check_choice("simulate.camera.rotation", self.rotation, ("CW", "CC"))
        check_range("simulate.camera.start_angle_deg", self.start_angle_deg, 0, 360, high_inclusive=False)
        check_range("simulate.camera.n_bins", self.n_bins, 2)
        check_range("simulate.camera.bin_mm", self.bin_mm, 0, low_inclusive=False)
        check_range("simulate.camera.radius_mm", self.radius_mm, 0, low_inclusive=False)

    @classmethod
    def from_config(cls, cam: dict) -> "Camera":
        keys = cls.__dataclass_fields__
        return cls(**{k: v for k, v in cam.items() if k in keys})

    @property
    def n_rows(self) -> int:
        return self.n_bins

    @property
    def views_per_head(self) -> int:
        return self.n_views // self.n_heads

    @property
    def step_deg(self) -> float:
        """Angular step (degrees) between views of one head; the heads together cover 360 degrees."""
        return 360.0 / self.n_views

    @property
    def start_angles_deg(self) -> list[float]:
        """DICOM StartAngle of each head (degrees): head 1 at ``start_angle_deg`` (0: the patient's back), the rest evenly spaced."""
        return [(self.start_angle_deg + h * 360.0 / self.n_heads) % 360.0 for h in range(self.n_heads)]

    def angles_deg(self) -> np.ndarray:
        """Angle of every frame (detector, then view), as :func:`geometry.frame_angles` reads it back."""
        return geometry.frame_angles(self.start_angles_deg, self.step_deg, self.views_per_head, self.rotation)

    def fwhm_mm(self, distance_mm) -> np.ndarray:
        """Collimator FWHM (mm) at a distance (mm) from the collimator face (>= 0)."""
        d = np.asarray(distance_mm, float)
        return np.maximum(self.collimator_fwhm_mm + self.collimator_fwhm_slope * (d - 100.0), 0.0)


def _blur_matrices(centres_out: np.ndarray, centres_in: np.ndarray, width: float, sigma: np.ndarray) -> np.ndarray:
    """``(n_depth, n_out, n_in)``: fraction of a point at ``centres_in`` landing in each output bin of ``width``."""
    from scipy.special import ndtr

    d = centres_out[None, :, None] - centres_in[None, None, :]
    s = np.maximum(sigma, 1e-9)[:, None, None]
    return (ndtr((d + width / 2) / s) - ndtr((d - width / 2) / s)).astype(np.float32)


def _support(volume: np.ndarray, grid: Grid, pose: np.ndarray, threshold: float = 0.0):
    """Native-mm bounds of the posed object: (max radius in the x-y plane, z min, z max).

    Taken from the 8 corners of the bounding box of voxels above ``threshold``;
    conservative for any view angle.
    """
    idx = np.nonzero(volume > threshold)
    if idx[0].size == 0:
        raise ValueError("the activity/attenuation volume is empty: nothing to project")
    lo = np.array([i.min() for i in idx]) - 1.0
    hi = np.array([i.max() for i in idx]) + 1.0
    corners = np.array(np.meshgrid(*zip(lo, hi), indexing="ij")).reshape(3, -1).T
    mm = corners @ grid.affine[:3, :3].T + grid.affine[:3, 3]
    nat = mm @ pose[:3, :3].T + pose[:3, 3]
    return float(np.linalg.norm(nat[:, :2], axis=1).max()), float(nat[:, 2].min()), float(nat[:, 2].max())


def _range(pos: np.ndarray, lo: float, hi: float) -> slice:
    ok = np.nonzero((pos >= lo) & (pos <= hi))[0]
    if ok.size == 0:
        raise ValueError(f"the object ({lo:.0f} .. {hi:.0f} mm) lies outside the camera's field of view")
    return slice(int(ok[0]), int(ok[-1]) + 1)


def _antialias(volume: np.ndarray, voxel_mm: float, bin_mm: float) -> np.ndarray:
    """Gaussian pre-filter so that point samples at ``bin_mm`` approximate bin averages (box variance matching)."""
    from scipy.ndimage import gaussian_filter

    var = (bin_mm**2 - voxel_mm**2) / 12.0
    if var <= 0:
        return volume
    return gaussian_filter(volume, sigma=np.sqrt(var) / voxel_mm, mode="constant")


def to_native(volume: np.ndarray, grid: Grid, camera: Camera, pose: np.ndarray, bins: slice, rows: slice) -> np.ndarray:
    """Resample an MNI-space volume into the camera's native frame (trilinear).

    Returns the native sub-volume ``(x = bin_positions[bins], y = bin_positions[bins],
    z = row_positions[rows])``: axis 2 runs in row order (superior first).
    """
    from scipy.ndimage import affine_transform

    h = camera.bin_mm
    x0 = geometry.bin_positions(camera.n_bins, h)[bins][0]
    z0 = geometry.row_positions(camera.n_rows, h)[rows][0]
    n_xy = bins.stop - bins.start
    idx2native = np.array([[h, 0, 0, x0], [0, h, 0, x0], [0, 0, -h, z0], [0, 0, 0, 1.0]])
    m = np.linalg.inv(grid.affine) @ np.linalg.inv(pose) @ idx2native
    return affine_transform(np.asarray(volume, np.float32), m[:3, :3], m[:3, 3], output_shape=(n_xy, n_xy, rows.stop - rows.start),
                            order=1, mode="constant", cval=0.0, prefilter=False, output=np.float32)


@functools.lru_cache(maxsize=1024)
def _rotation_weights(theta_deg: float, n_bins: int, h: float, start: int, stop: int):
    """Bilinear gather of a view grid ``(s, t)`` from a native ``(x, y)`` grid, both at ``pos``.

    ``pos = geometry.bin_positions(n_bins, h)[start:stop]`` (mm). Returns flat
    indices ``(4, n*n)`` into the native grid padded by one zero voxel per side,
    and weights ``(4, n*n)`` (0 outside the grid), both read-only: they are cached,
    since every subject of a batch shares the views and most share the range.
    """
    pos = geometry.bin_positions(n_bins, h)[start:stop]
    c, s = np.cos(np.deg2rad(theta_deg)), np.sin(np.deg2rad(theta_deg))
    ss, tt = np.meshgrid(pos, pos, indexing="ij")  # (b, k)
    # x = s u_x + t d_x, y = s u_y + t d_y with u = (cos, -sin), d = (-sin, -cos) (geometry)
    fx = (c * ss - s * tt - pos[0]) / h + 1.0  # +1: the zero padding
    fy = (-s * ss - c * tt - pos[0]) / h + 1.0
    n = pos.size + 2
    ok = (fx >= 0) & (fx <= n - 1) & (fy >= 0) & (fy <= n - 1)
    ix, iy = np.clip(np.floor(fx), 0, n - 2).astype(np.intp), np.clip(np.floor(fy), 0, n - 2).astype(np.intp)
    wx, wy = np.clip(fx - ix, 0, 1), np.clip(fy - iy, 0, 1)
    idx = np.stack([ix * n + iy, (ix + 1) * n + iy, ix * n + iy + 1, (ix + 1) * n + iy + 1]).reshape(4, -1)
    w = np.stack([(1 - wx) * (1 - wy), wx * (1 - wy), (1 - wx) * wy, wx * wy]) * ok
    return _read_only(idx), _read_only(w.reshape(4, -1).astype(np.float32))


def _read_only(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


@functools.lru_cache(maxsize=64)
def _blur_operators(camera: Camera, bins: tuple, rows: tuple, out_bins: tuple, out_rows: tuple):
    """The depth-dependent collimator blur of :func:`project` (cached per camera and sampled range).

    ``bins``/``rows`` are the ``(start, stop)`` of the sampled bins and rows,
    ``out_bins``/``out_rows`` those of the frame they blur into. Returns
    ``g_bins (k, n_out_bins, n)`` and ``g_rows (n * nr, n_out_rows)``, read-only.
    """
    h = camera.bin_mm
    pos_all, zpos_all = geometry.bin_positions(camera.n_bins, h), geometry.row_positions(camera.n_rows, h)
    pos, z_in = pos_all[slice(*bins)], zpos_all[slice(*rows)]
    sigma = camera.fwhm_mm(camera.radius_mm - pos) / FWHM_PER_SIGMA  # depth t_k = pos[k]
    g_bins = _blur_matrices(pos_all[slice(*out_bins)], pos, h, sigma)
    g_rows = _blur_matrices(zpos_all[slice(*out_rows)], z_in, h, sigma)
    g_rows = np.ascontiguousarray(g_rows.transpose(0, 2, 1).reshape(pos.size * z_in.size, -1))
    return _read_only(g_bins), _read_only(g_rows)


def project(activity: np.ndarray, grid: Grid, camera: Camera, pose: np.ndarray | None = None,
            head: np.ndarray | None = None, blur: bool = True, antialias: bool = True) -> np.ndarray:
    """Noise-free projections of an MNI-space volume.

    Parameters
    ----------
    activity : ``grid.shape`` concentration (any unit) in MNI space.
    grid : the grid of ``activity`` (and ``head``).
    camera : geometry, blur and attenuation.
    pose : 4x4 ``native_mm = pose @ mni_mm`` (identity if None).
    head : fraction (0-1) of water-like tissue per voxel on ``grid``; None = no attenuation.
    blur : apply the collimator blur (False: ideal line integrals).
    antialias : pre-filter the volume when its voxels are smaller than a bin.

    Returns
    -------
    ``(n_views, n_rows, n_bins)`` float64: frames in DICOM order (detector,
    then angle; see ``camera.angles_deg()``), each the line integral
    ``concentration x mm`` of ``geometry``'s definition.

    Notes
    -----
    The volume is resampled once into the native frame (pose applied) at the
    bin size; each view then rotates it about z by bilinear interpolation
    (rows are shared, so this is a gather of whole rows) and integrates along
    the depth ``t`` towards the detector.
    """
    activity = np.asarray(activity, np.float32)
    if activity.shape != grid.shape:
        raise ValueError(f"activity has shape {activity.shape}, the grid {grid.shape}")
    pose = np.eye(4) if pose is None else np.asarray(pose, float)
    h = camera.bin_mm
    mu_mm = camera.mu_per_cm / 10.0
    attenuate = head is not None and mu_mm > 0
    if attenuate:
        head = np.asarray(head, np.float32)
        if head.shape != grid.shape:
            raise ValueError(f"head has shape {head.shape}, the grid {grid.shape}")

    # the part of the native frame that can hold the posed object (any angle), plus one bin
    rmax, zmin, zmax = _support(activity if not attenuate else np.maximum(activity, head), grid, pose)
    pos_all = geometry.bin_positions(camera.n_bins, h)
    zpos_all = geometry.row_positions(camera.n_rows, h)
    bs = _range(pos_all, -rmax - h, rmax + h)
    rs = _range(zpos_all, zmin - h, zmax + h)
    pos, z_in = pos_all[bs], zpos_all[rs]
    n, nr = pos.size, z_in.size

    def native_padded(vol):
        nat = to_native(vol, grid, camera, pose, bs, rs)
        return np.pad(nat, ((1, 1), (1, 1), (0, 0))).reshape(-1, nr)

    act = native_padded(_antialias(activity, grid.voxel_mm, h) if antialias else activity)
    if attenuate:  # activity and mu side by side: each view rotates both with one gather
        act = np.concatenate([act, native_padded(head) * np.float32(mu_mm)], axis=1)

    out_bs, out_rs = bs, rs
    if blur:
        sigma = camera.fwhm_mm(camera.radius_mm - pos) / FWHM_PER_SIGMA  # depth t_k = pos[k]
        # blurred counts reach at most 5 sigma beyond the object (the rest, < 1e-6, is dropped)
        m = 5.0 * float(sigma.max())
        out_bs = _range(pos_all, -rmax - h - m, rmax + h + m)
        out_rs = _range(zpos_all, zmin - h - m, zmax + h + m)
        g_bins, g_rows = _blur_operators(camera, (bs.start, bs.stop), (rs.start, rs.stop),
                                         (out_bs.start, out_bs.stop), (out_rs.start, out_rs.stop))

    angles = camera.angles_deg()
    frames = np.zeros((angles.size, camera.n_rows, camera.n_bins))
    with _single_thread_blas():  # small GEMMs: threads only add contention (and nondeterminism)
        for i, theta in enumerate(angles):
            idx, w = _rotation_weights(float(theta), camera.n_bins, h, bs.start, bs.stop)
            _project_view(i, idx, w, frames, act, attenuate, h, n, nr, out_bs if blur else bs, out_rs if blur else rs,
                          g_bins if blur else None, g_rows if blur else None)
    return frames


def _single_thread_blas():
    """Limit BLAS to one thread while projecting (threadpoolctl when installed)."""
    import contextlib

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it the environment's thread settings apply
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _project_view(i, idx, w, frames, act, attenuate, h, n, nr, bs, rs, g_bins, g_rows):
    """Fill ``frames[i][rs, bs]`` with the projection of view ``i`` (rotation gather ``idx, w``; see :func:`project`).

    ``act`` is the padded native activity ``(points, nr)``, with ``attenuate`` followed by mu ``(points, 2 nr)``.
    """
    both = w[0][:, None] * act[idx[0]]
    for j in range(1, 4):
        both += w[j][:, None] * act[idx[j]]
    vol = both[:, :nr].reshape(n, n, nr)  # (b, k, r)
    if attenuate:
        mu = both[:, nr:].reshape(n, n, nr)
        # path from each sample to the exit towards +d: the samples beyond it plus half its own
        tau = (np.cumsum(mu[:, ::-1, :], axis=1)[:, ::-1, :] - 0.5 * mu) * h
        vol *= np.exp(-tau)
    if g_bins is not None:
        planes = np.matmul(g_bins, np.ascontiguousarray(vol.transpose(1, 0, 2)))  # (k, n_out, nr): blur across bins
        frame_br = planes.transpose(1, 0, 2).reshape(g_bins.shape[1], n * nr) @ g_rows  # blur across rows, sum over k
        frames[i, rs, bs] = frame_br.T * h
    else:
        frames[i, rs, bs] = vol.sum(axis=1, dtype=np.float64).T * h


def add_noise(frames: np.ndarray, total_counts: float, rng: np.random.Generator) -> np.ndarray:
    """Poisson counts whose expected total is ``total_counts``; int64 of the frames' shape."""
    total = frames.sum()
    if not total > 0:
        raise ValueError("the projections are empty; cannot scale them to counts")
    return rng.poisson(frames * (total_counts / total))
