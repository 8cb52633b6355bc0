"""SPM12-style 12-parameter affine registration of a native SPECT to a template.

Model
-----
For sample points ``x`` (template / MNI mm) the least-squares problem is

    min_{p, s}  mean_i ( f(M(p) x_i) - s g(x_i) )^2  +  lambda |q(p)|^2

with ``f`` the (smoothed) source, ``g`` the (smoothed) template, ``s`` an
intensity scale, the mean over the sample points that ``M`` maps inside the
source volume, and ``M(p) = T R Z S`` the 12-parameter affine of SPM's
``spm_matrix`` (translations mm, rotations radians, zooms, shears), mapping
template mm to source mm: ``source_mm = M @ template_mm``, the convention of
:mod:`datxai.geometry` (the synthetic truth has ``native_mm = pose @ mni_mm``).
``q`` is a penalty on anisotropic zooms (log zooms minus their mean, so that an
isotropic head-size scale is free) and on shears. As in ``spm_affreg`` the
source is sampled at the template's points; points that fall outside its
field of view are left out. Both images are divided by their global mean
first (SPM's "global" = mean of voxels above 1/8 of the mean) so that the
cost is dimensionless and ``lambda`` means the same for every scan.

Optimisation: Gauss-Newton with Levenberg-Marquardt damping
(``H + lambda_LM diag(H)``), analytic Jacobian from the source's gradient
images and the analytic derivative of ``spm_matrix``; coarse-to-fine over
sampling distances (mm); initialised by matching centres of mass. Everything
is deterministic.

Cost per scan (BENCHMARKS.md): nearly all of it is interpolating the source at
the sample points of the finest level. Hence: the source and its three gradient
images are interpolated together with shared corner weights (:class:`_Trilinear`);
a level stops without re-linearising once a step gains less than ``tolerance``;
the Levenberg-Marquardt damping search stops as soon as the Gauss-Newton model
predicts less than ``tolerance`` of the cost (instead of trying every damping up
to 1e10, each a full interpolation); the closing statistics share one
interpolation per parameter set.

Friston et al. (1995), Spatial registration and normalization of images,
Hum Brain Mapp 3:165-189; Ashburner & Friston (1999), Hum Brain Mapp 7:254-266.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import gaussian_filter, map_coordinates

from ..checks import check_choice, check_range

log = logging.getLogger(__name__)

PARAM_NAMES = ("tx", "ty", "tz", "rx", "ry", "rz", "zx", "zy", "zz", "sxy", "sxz", "syz")
IDENTITY_PARAMS = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0], dtype=float)
FWHM_TO_SIGMA = 1.0 / np.sqrt(8.0 * np.log(2.0))

# Plausibility bounds for a head registered to an adult-brain template.
ZOOM_RANGE = (0.67, 1.5)
DET_RANGE = (0.4, 2.5)
MAX_SHEAR = 0.35
MIN_CORRELATION = 0.5
MIN_INSIDE = 0.5  # fraction of template sample points that must land inside the source


# --------------------------------------------------------------------------- matrices
def _rotations(p):
    c4, s4, c5, s5, c6, s6 = np.cos(p[3]), np.sin(p[3]), np.cos(p[4]), np.sin(p[4]), np.cos(p[5]), np.sin(p[5])
    r1 = np.array([[1, 0, 0, 0], [0, c4, s4, 0], [0, -s4, c4, 0], [0, 0, 0, 1.0]])
    r2 = np.array([[c5, 0, s5, 0], [0, 1, 0, 0], [-s5, 0, c5, 0], [0, 0, 0, 1.0]])
    r3 = np.array([[c6, s6, 0, 0], [-s6, c6, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])
    d1 = np.array([[0, 0, 0, 0], [0, -s4, c4, 0], [0, -c4, -s4, 0], [0, 0, 0, 0.0]])
    d2 = np.array([[-s5, 0, c5, 0], [0, 0, 0, 0], [-c5, 0, -s5, 0], [0, 0, 0, 0.0]])
    d3 = np.array([[-s6, c6, 0, 0], [-c6, -s6, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0.0]])
    return (r1, r2, r3), (d1, d2, d3)


def _parts(p):
    p = np.asarray(p, dtype=float)
    if p.shape != (12,):
        raise ValueError(f"affine parameters must have 12 elements ({', '.join(PARAM_NAMES)}), got shape {p.shape}")
    t = np.eye(4)
    t[:3, 3] = p[:3]
    z = np.diag([p[6], p[7], p[8], 1.0])
    s = np.eye(4)
    s[0, 1], s[0, 2], s[1, 2] = p[9], p[10], p[11]
    return t, _rotations(p), z, s


def spm_matrix(p) -> np.ndarray:
    """4x4 affine from 12 parameters, as SPM12's ``spm_matrix``: ``A = T R1 R2 R3 Z S``.

    ``p = (tx, ty, tz [mm], rx, ry, rz [radians], zx, zy, zz, sxy, sxz, syz)``;
    ``S`` is upper-triangular with the shears at (0,1), (0,2), (1,2).
    """
    t, ((r1, r2, r3), _), z, s = _parts(p)
    return t @ r1 @ r2 @ r3 @ z @ s


def spm_matrix_derivatives(p) -> np.ndarray:
    """Analytic ``dA/dp_k`` of :func:`spm_matrix`, shape ``(12, 4, 4)``."""
    t, ((r1, r2, r3), (d1, d2, d3)), z, s = _parts(p)
    out = np.zeros((12, 4, 4))
    for k in range(3):
        out[k, k, 3] = 1.0
    zs = z @ s
    out[3] = t @ d1 @ r2 @ r3 @ zs
    out[4] = t @ r1 @ d2 @ r3 @ zs
    out[5] = t @ r1 @ r2 @ d3 @ zs
    trr = t @ r1 @ r2 @ r3
    for k in range(3):
        dz = np.zeros((4, 4))
        dz[k, k] = 1.0
        out[6 + k] = trr @ dz @ s
    trz = trr @ z
    for k, (i, j) in enumerate(((0, 1), (0, 2), (1, 2))):
        ds = np.zeros((4, 4))
        ds[i, j] = 1.0
        out[9 + k] = trz @ ds
    return out


def spm_imatrix(m) -> np.ndarray:
    """The 12 parameters of an affine, inverse of :func:`spm_matrix` (SPM12's ``spm_imatrix``)."""
    m = np.asarray(m, dtype=float)
    r = m[:3, :3]
    c = np.linalg.cholesky(r.T @ r).T  # upper triangular, r'r = c'c
    p = np.zeros(12)
    p[:3] = m[:3, 3]
    p[6:9] = np.diag(c)
    if np.linalg.det(r) < 0:
        p[6] = -p[6]
    c = c / np.diag(c)[:, None]
    p[9:12] = c[0, 1], c[0, 2], c[1, 2]
    r0 = spm_matrix(np.r_[0, 0, 0, 0, 0, 0, p[6:12]])[:3, :3]
    r1 = r @ np.linalg.inv(r0)
    rang = lambda x: np.clip(x, -1.0, 1.0)  # noqa: E731
    p[4] = np.arcsin(rang(r1[0, 2]))
    if (abs(p[4]) - np.pi / 2) ** 2 < 1e-9:
        p[3] = 0.0
        p[5] = np.arctan2(-rang(r1[1, 0]), rang(-r1[2, 0] / r1[0, 2]))
    else:
        cy = np.cos(p[4])
        p[3] = np.arctan2(rang(r1[1, 2] / cy), rang(r1[2, 2] / cy))
        p[5] = np.arctan2(rang(r1[0, 1] / cy), rang(r1[0, 0] / cy))
    return p


# --------------------------------------------------------------------------- images
def voxel_sizes(affine) -> np.ndarray:
    """Voxel sizes (mm) along the three array axes."""
    return np.sqrt((np.asarray(affine, dtype=float)[:3, :3] ** 2).sum(axis=0))


def smooth_mm(data: np.ndarray, affine: np.ndarray, fwhm_mm: float) -> np.ndarray:
    """Gaussian smoothing with an isotropic FWHM in mm (voxel sizes from ``affine``). float32."""
    data = np.asarray(data, dtype=np.float32)
    if fwhm_mm <= 0:
        return data.copy()
    sigma = fwhm_mm * FWHM_TO_SIGMA / voxel_sizes(affine)
    return gaussian_filter(data, sigma=sigma, mode="constant", cval=0.0).astype(np.float32)


def resample_affine(data, data_affine, matrix, out_shape, out_affine, order: int = 1, cval: float = 0.0) -> np.ndarray:
    """Sample ``data`` at ``matrix @ out_affine @ ijk`` for every voxel of an output grid.

    ``matrix`` maps output-space mm to data-space mm (for normalisation:
    template/MNI mm -> native mm). Points outside ``data`` get ``cval``.
    Returns float32 of ``out_shape``.
    """
    vox = np.linalg.inv(np.asarray(data_affine, dtype=float)) @ np.asarray(matrix, dtype=float) @ np.asarray(out_affine, dtype=float)
    ijk = np.indices(tuple(out_shape), dtype=np.float64).reshape(3, -1)
    src = vox[:3, :3] @ ijk + vox[:3, 3:4]
    data = np.asarray(data, dtype=np.float32)
    out = map_coordinates(data, src, order=order, mode="constant", cval=cval, prefilter=order > 1)
    return out.reshape(tuple(out_shape)).astype(np.float32)


def reslice_to_grid(source, source_affine, matrix, grid, order: int = 1) -> np.ndarray:
    """The source (native) image on the MNI analysis ``grid``: value at ``matrix @ grid_mm``. float32 ``grid.shape``."""
    return resample_affine(source, source_affine, matrix, grid.shape, grid.affine, order=order)


def global_mean(data: np.ndarray) -> float:
    """SPM's global signal: mean of voxels above 1/8 of the mean of the (positive part of the) image."""
    d = np.asarray(data, dtype=float)
    m = np.clip(d, 0, None).mean()
    sel = d[d > m / 8.0]
    return float(sel.mean()) if sel.size and m > 0 else 0.0


def centre_of_mass_mm(data: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Intensity-weighted centre (mm) of the voxels above 20 % of the 99th percentile.

    The threshold removes the FBP background (noise, streaks) that would pull a
    plain centre of mass towards the middle of the field of view.
    """
    d = np.asarray(data, dtype=float)
    w = np.clip(d - 0.2 * np.percentile(d, 99), 0, None)
    if not w.sum() > 0:
        w = np.ones_like(d)
    ijk = np.array([(w.sum(axis=tuple(a for a in range(3) if a != ax)) * np.arange(d.shape[ax])).sum() for ax in range(3)]) / w.sum()
    return np.asarray(affine, dtype=float)[:3, :3] @ ijk + np.asarray(affine, dtype=float)[:3, 3]


# --------------------------------------------------------------------------- estimator
@dataclass
class AffineResult:
    """Outcome of :func:`estimate_affine`.

    ``matrix`` maps template (MNI) mm to source (native) mm. ``scale`` is the
    intensity scale (source ~ scale * template, original units). ``cost`` is
    the normalised cost at the finest sampling; ``initial_cost`` the same cost
    at the centre-of-mass start. ``flags`` lists what the checks found
    (``nonfinite``, ``cost_increase``, ``implausible_zoom``,
    ``implausible_shear``, ``implausible_determinant``, ``nonpositive_scale``,
    ``poor_fit``, ``outside_fov``, ``not_converged``); ``diverged`` is true for any flag but
    ``not_converged``. ``initial_matrix`` is the centre-of-mass start.
    """

    matrix: np.ndarray
    params: np.ndarray
    scale: float
    cost: float
    initial_cost: float
    correlation: float
    iterations: int
    iterations_per_level: list
    converged: bool
    diverged: bool
    flags: list = field(default_factory=list)
    initial_matrix: np.ndarray = field(default_factory=lambda: np.eye(4))

    def to_dict(self) -> dict:
        """JSON-ready summary (rotations also in degrees)."""
        p = np.asarray(self.params, dtype=float)
        return {
            "matrix": np.asarray(self.matrix).tolist(),
            "parameters": {n: float(v) for n, v in zip(PARAM_NAMES, p)},
            "rotations_deg": np.rad2deg(p[3:6]).tolist() if np.all(np.isfinite(p)) else [None] * 3,
            "determinant": float(np.linalg.det(np.asarray(self.matrix)[:3, :3])) if np.all(np.isfinite(self.matrix)) else None,
            "intensity_scale": float(self.scale),
            "cost": float(self.cost),
            "initial_cost": float(self.initial_cost),
            "correlation": float(self.correlation),
            "iterations": int(self.iterations),
            "iterations_per_level": [int(i) for i in self.iterations_per_level],
            "converged": bool(self.converged),
            "diverged": bool(self.diverged),
            "flags": list(self.flags),
            "initial_matrix": np.asarray(self.initial_matrix).tolist(),
            "convention": "source_mm = matrix @ template_mm (template/MNI mm -> native mm); parameters as SPM12 spm_matrix, rotations in radians",
        }


def affine_record(res: AffineResult, subject: str = "", on_divergence: str = "fallback", who: str = "") -> dict:
    """The affine JSON of one registration: :meth:`AffineResult.to_dict` plus the matrix used for reslicing.

    ``estimated_matrix`` is the fit; ``matrix`` is what the image is resliced with: the fit,
    or the centre-of-mass start when the fit diverged and ``on_divergence`` is ``fallback``
    (``fallback`` true). ``on_divergence="error"`` raises ``RuntimeError`` naming ``who``
    (default: the subject) instead.
    """
    check_choice("normalize.on_divergence", on_divergence, ("fallback", "error"))
    who = who or subject or "image"
    out = res.to_dict()
    out["subject"] = subject or None
    out["estimated_matrix"] = out["matrix"]
    out["fallback"] = False
    if res.diverged:
        if on_divergence == "error":
            raise RuntimeError(f"{who}: affine registration diverged ({', '.join(res.flags)})")
        log.warning("%s: affine registration diverged (%s); reslicing with the centre-of-mass start instead",
                    who, ", ".join(res.flags))
        out["matrix"] = np.asarray(res.initial_matrix).tolist()
        out["fallback"] = True
    elif res.flags:
        log.warning("%s: affine registration flags: %s", who, ", ".join(res.flags))
    log.info("%s: cost %.4g -> %.4g in %d iterations, correlation %.3f, zooms %s", who, res.initial_cost, res.cost,
             res.iterations, res.correlation, np.round(res.params[6:9], 3))
    return out


def _sample_points(shape, affine, spacing_mm: float) -> np.ndarray:
    """Voxel coordinates ``(3, n)`` of a regular lattice of ``spacing_mm`` over an image."""
    step = spacing_mm / voxel_sizes(affine)
    axes = [np.arange(0, n - 1 + 1e-6, max(s, 1e-3)) for n, s in zip(shape, step)]
    return np.stack(np.meshgrid(*axes, indexing="ij")).reshape(3, -1)


def zoom_shear_penalty(p, weight: float):
    """Regulariser residuals ``q`` (6,) and Jacobian (6, 12): anisotropic log-zooms and shears."""
    z = p[6:9]
    q = np.zeros(6)
    jq = np.zeros((6, 12))
    if weight <= 0:
        return q, jq
    w = np.sqrt(weight)
    lz = np.log(z)
    q[:3] = w * (lz - lz.mean())
    jq[:3, 6:9] = w * (np.eye(3) - 1.0 / 3.0) / z[None, :]
    q[3:] = w * p[9:12]
    jq[3:, 9:12] = w * np.eye(3)
    return q, jq


class _Trilinear:
    """Trilinear interpolation of several volumes of one shape at the same points (``mode="nearest"`` inside).

    The corner indices and weights are computed once per point set and reused for
    every volume (the source and its three gradient images): ~2x faster than four
    ``map_coordinates(order=1)`` calls, same values to float32 rounding (~2e-7
    relative). Points must lie inside ``[0, n - 1]`` per axis (the caller masks
    them). Volumes with an axis shorter than 2 voxels use ``map_coordinates``.
    """

    def __init__(self, volumes):
        self.volumes = [np.ascontiguousarray(v, dtype=np.float32) for v in volumes]
        self.shape = self.volumes[0].shape
        self.flat = [v.ravel() for v in self.volumes]
        self.fast = min(self.shape) >= 2

    def __call__(self, vox, which):
        """Values ``(len(which), n)`` float32 of the volumes ``which`` (indices) at voxel coordinates ``vox`` (3, n)."""
        if not self.fast:
            return np.stack([map_coordinates(self.volumes[k], vox, order=1, mode="nearest", prefilter=False)
                             for k in which])
        i = np.floor(vox).astype(np.intp)
        np.minimum(i, np.asarray(self.shape)[:, None] - 2, out=i)  # the upper face: weight 1 on the last voxel
        fr = (vox - i).astype(np.float32)
        sx, sy = self.shape[1] * self.shape[2], self.shape[2]
        base = i[0] * sx + i[1] * sy + i[2]
        fx, fy, fz = fr
        gx, gy, gz = 1 - fx, 1 - fy, 1 - fz
        out = np.zeros((len(which), vox.shape[1]), dtype=np.float32)
        tmp = np.empty(vox.shape[1], dtype=np.float32)
        for wx, ox in ((gx, 0), (fx, sx)):
            for wy, oy in ((gy, 0), (fy, sy)):
                wxy = wx * wy
                for wz, oz in ((gz, 0), (fz, 1)):
                    w = wxy * wz
                    off = ox + oy + oz  # corner = base + off: take from the view that starts at off
                    for row, k in enumerate(which):
                        self.flat[k][off:].take(base, out=tmp)
                        tmp *= w
                        out[row] += tmp
        return out


def _cost_from_samples(p, s, fv, gi, weight) -> float:
    """Cost ``mean (f - s g)^2 + |q(p)|^2`` from the samples inside the source."""
    r = fv - s * gi
    q = zoom_shear_penalty(p, weight)[0]
    return float(r @ r / len(r) + q @ q)


class _Problem:
    """Residuals and Jacobian at one sampling level (vectorised over the sample points).

    As in ``spm_affreg``, sample points that map outside the source volume are
    left out (a field of view that cuts the head must not pull the fit); the
    cost is the mean over the points inside.
    """

    def __init__(self, f, grads, src_inv, g, x_mm, weight, sampler: _Trilinear | None = None):
        self.f, self.grads, self.src_inv, self.g, self.x, self.weight = f, grads, src_inv, g, x_mm, weight
        self.n = len(g)
        self.xt = np.ascontiguousarray(x_mm.T)  # (4, n)
        self.upper = np.asarray(f.shape, dtype=float)[:, None] - 1.0
        self.sampler = sampler if sampler is not None else _Trilinear([f, *grads])

    def xt32(self, inside):
        if not hasattr(self, "_xt32"):
            self._xt32 = self.xt.astype(np.float32)
        return self._xt32 if inside.all() else self._xt32[:, inside]

    def _inside(self, p):
        m = self.src_inv @ spm_matrix(p)
        vox = m[:3] @ self.xt  # (3, n)
        inside = (vox >= 0).all(axis=0)
        inside &= (vox <= self.upper).all(axis=0)
        return (vox if inside.all() else vox[:, inside]), inside

    def residual(self, p, s):
        """``(r, vox, f(Mx), inside)`` for the points inside the source; ``inside`` is a boolean mask over all points."""
        vox, inside = self._inside(p)
        fv = self.sampler(vox, (0,))[0]
        return fv - s * self.g[inside], vox, fv, inside

    def samples(self, p):
        """``(f(Mx) float32, g(x))`` over the points inside the source; empty arrays for invalid parameters."""
        if not np.all(np.isfinite(p)) or np.any(p[6:9] <= 0):
            return np.zeros(0, dtype=np.float32), np.zeros(0)
        _, _, fv, inside = self.residual(p, 0.0)
        return fv, self.g[inside]

    def cost(self, p, s):
        """Mean squared residual plus penalty; inf for invalid parameters or no point inside."""
        if not np.isfinite(s):
            return np.inf
        fv, gi = self.samples(p)
        return _cost_from_samples(p, s, fv, gi, self.weight) if fv.size else np.inf

    def linearise(self, p, s):
        """Cost, half-gradient ``J^T r / n`` (13,) and Gauss-Newton Hessian ``J^T J / n`` (13, 13) in (p, s).

        With ``y = M x``, ``dr_i/dp_k = grad f(y_i) . (dM/dp_k) x_i``, i.e. ``J_p = O D^T`` with
        ``O_i = grad f(y_i) (x) x_i`` (12 per point) and ``D`` the derivatives of :func:`spm_matrix`.
        ``O`` is held as (12, n) so that every array operation runs along the long axis.
        """
        vox, inside = self._inside(p)
        vals = self.sampler(vox, (0, 1, 2, 3))  # f and its three gradient images at the same points
        xt = self.xt if inside.all() else self.xt[:, inside]
        g = self.g if inside.all() else self.g[inside]
        r = vals[0] - s * g
        n = max(len(r), 1)
        gv = vals[1:]
        gmm = self.src_inv[:3, :3].T @ gv  # d f / d y_mm  (3, n)
        d = spm_matrix_derivatives(p)[:, :3, :].reshape(12, 12)
        # J'r and J'g in float64 without forming O: O r = ((grad f) r) x^T, flattened (3 x 4)
        o_r = ((gmm * r) @ xt.T).ravel()
        o_g = ((gmm * g) @ xt.T).ravel()
        # O O^T (the Gauss-Newton Hessian) from float32 O: it sets the step, not the optimum (~1e-6 relative)
        o = (gmm.astype(np.float32)[:, None, :] * self.xt32(inside)[None, :, :]).reshape(12, -1)
        h = np.empty((13, 13))
        h[:12, :12] = d @ (o @ o.T).astype(float) @ d.T
        h[:12, 12] = h[12, :12] = -(d @ o_g)
        h[12, 12] = g @ g
        grad = np.r_[d @ o_r, -(g @ r)]
        h /= n
        grad /= n
        q, jq = zoom_shear_penalty(p, self.weight)
        h[:12, :12] += jq.T @ jq
        grad[:12] += jq.T @ q
        return float(r @ r / n + q @ q), grad, h


def damped_step(h, grad, cost, lam, tolerance):
    """Levenberg-Marquardt step ``(step (13,), lam)``, or ``(None, lam)`` when no step can count as progress.

    Solves ``(H + lam diag(H)) d = -grad``, raising ``lam`` tenfold while the system is
    singular. The decrease the Gauss-Newton model predicts (``-(2 grad.d + d'Hd)``)
    shrinks as ``lam`` grows: once it is below ``tolerance * cost`` (or ``lam`` reaches
    1e10) no step can count as progress, so the search stops instead of trying every
    ``lam`` (each try costs an interpolation of all sample points). The caller raises
    ``lam`` tenfold after a step that does not lower the cost.
    """
    while lam < 1e10:
        a = h + lam * np.diag(np.diag(h)) + 1e-12 * np.eye(len(grad))
        try:
            step = -np.linalg.solve(a, grad)
        except np.linalg.LinAlgError:
            lam *= 10
            continue
        predicted = -(2.0 * grad @ step + step @ h @ step)
        return (step, lam) if predicted > tolerance * cost else (None, lam)
    return None, lam


def _plausibility_flags(matrix, params, scale) -> list[str]:
    flags = []
    z = np.sqrt((matrix[:3, :3] ** 2).sum(axis=0))
    if np.any(z < ZOOM_RANGE[0]) or np.any(z > ZOOM_RANGE[1]):
        flags.append("implausible_zoom")
    if np.any(np.abs(params[9:12]) > MAX_SHEAR):
        flags.append("implausible_shear")
    det = np.linalg.det(matrix[:3, :3])
    if not DET_RANGE[0] <= det <= DET_RANGE[1]:
        flags.append("implausible_determinant")
    if not scale > 0:
        flags.append("nonpositive_scale")
    return flags


def check_inputs(source, template, sampling_mm):
    """``(source float32, template float32, sampling_mm list)`` after the checks of :func:`estimate_affine`."""
    source = np.asarray(source, dtype=np.float32)
    template = np.asarray(template, dtype=np.float32)
    if source.ndim != 3 or template.ndim != 3:
        raise ValueError(f"source and template must be 3-D, got {source.shape} and {template.shape}")
    if not (np.all(np.isfinite(source)) and np.all(np.isfinite(template))):
        raise ValueError("source and template must be finite (NaN/Inf found)")
    sampling_mm = [float(d) for d in np.atleast_1d(sampling_mm)]
    if not sampling_mm:
        raise ValueError("normalize.sampling_mm must hold at least one distance")
    for i, d in enumerate(sampling_mm):
        check_range(f"normalize.sampling_mm[{i}]", d, 0, low_inclusive=False)
    return source, template, sampling_mm


def centre_of_mass_start(source, source_affine, template, template_affine) -> np.ndarray:
    """The start of the fit: a translation (4x4) that matches the images' centres of mass."""
    m = np.eye(4)
    m[:3, 3] = centre_of_mass_mm(source, source_affine) - centre_of_mass_mm(template, template_affine)
    return m


def level_points(g_img, template_affine, spacing_mm: float):
    """One sampling level: template values ``g`` (n,) float64 and homogeneous points ``x`` (n, 4), mm."""
    vox = _sample_points(g_img.shape, template_affine, spacing_mm)
    ivox = np.rint(vox)
    if np.array_equal(ivox, vox):  # lattice on the template's voxels (spacing = voxel size): no interpolation
        g = g_img[tuple(ivox.astype(np.intp))].astype(float)
    else:
        g = map_coordinates(g_img, vox, order=1, mode="nearest", prefilter=False).astype(float)
    x = np.c_[(template_affine[:3, :3] @ vox + template_affine[:3, 3:4]).T, np.ones(vox.shape[1])]
    return g, x


def estimate_affine(
    source: np.ndarray,
    source_affine: np.ndarray,
    template: np.ndarray,
    template_affine: np.ndarray,
    sampling_mm=(8.0, 4.0),
    regularization: float = 0.01,
    max_iterations: int = 64,
    tolerance: float = 1e-6,
    fwhm_mm: float = 0.0,
    init_matrix: np.ndarray | None = None,
    min_correlation: float = MIN_CORRELATION,
) -> AffineResult:
    """Estimate ``M`` (template mm -> source mm) and an intensity scale by least squares.

    Parameters
    ----------
    source, source_affine : native image (any shape) and its voxel-to-mm affine.
    template, template_affine : template image (MNI space) and its affine.
    sampling_mm : coarse-to-fine distances (mm) between sample points in the template.
    regularization : weight of the penalty on anisotropic zooms and shears (0 = none).
    max_iterations : Gauss-Newton iterations per sampling level.
    tolerance : relative cost decrease below which a level has converged.
    fwhm_mm : smooth both images by this FWHM first (0 when they are already smoothed).
    init_matrix : start; default matches centres of mass (translation only).
    min_correlation : below this Pearson correlation between the warped source and the
        template at the finest level, the fit is flagged ``poor_fit``.

    Returns
    -------
    AffineResult ; never raises for a bad fit: it flags it (see :class:`AffineResult`).
    """
    source, template, sampling_mm = check_inputs(source, template, sampling_mm)
    if fwhm_mm > 0:
        source = smooth_mm(source, source_affine, fwhm_mm)
        template = smooth_mm(template, template_affine, fwhm_mm)
    source_affine = np.asarray(source_affine, dtype=float)
    template_affine = np.asarray(template_affine, dtype=float)

    # dimensionless intensities
    gs, gt = global_mean(source), global_mean(template)
    f = source / gs if gs > 0 else source
    g_img = template / gt if gt > 0 else template
    grads = [np.ascontiguousarray(gr, dtype=np.float32) for gr in np.gradient(f)]
    src_inv = np.linalg.inv(source_affine)
    sampler = _Trilinear([f, *grads])

    if init_matrix is None:
        init_matrix = centre_of_mass_start(source, source_affine, template, template_affine)
    init_matrix = np.asarray(init_matrix, dtype=float)
    p = spm_imatrix(init_matrix)
    s = None
    iters, converged_levels = [], []
    problem = None
    for level, spacing in enumerate(sampling_mm):
        g, x = level_points(g_img, template_affine, spacing)
        problem = _Problem(f, grads, src_inv, g, x, regularization, sampler)
        if s is None:  # least-squares scale at the start
            fv, inside = problem.residual(p, 0.0)[2:]
            gi = g[inside]
            s = float(fv @ gi / (gi @ gi)) if gi @ gi > 0 else 1.0
        lam = 1e-3
        cost, grad, h = problem.linearise(p, s)
        n_it, converged = 0, False
        for n_it in range(1, max_iterations + 1):
            improved = False
            while True:
                step, lam = damped_step(h, grad, cost, lam, tolerance)
                if step is None:
                    break
                p_new, s_new = p + step[:12], s + step[12]
                c_new = problem.cost(p_new, s_new)
                if c_new < cost:
                    improved = True
                    break
                lam *= 10
            if not improved:  # no descent direction left: a (local) minimum
                converged = True
                break
            rel = (cost - c_new) / max(cost, 1e-30)
            p, s = p_new, s_new
            lam = max(lam / 10, 1e-7)
            if rel < tolerance:  # converged: no need to linearise at the new point (c_new is its cost)
                cost = c_new
                converged = True
                break
            cost, grad, h = problem.linearise(p, s)
        iters.append(n_it)
        converged_levels.append(converged)
        log.debug("level %d (%.1f mm, %d points): %d iterations, cost %.5g", level, spacing, problem.n, n_it, cost)

    return summarise_fit(p, s, init_matrix, problem.samples(spm_imatrix(init_matrix)), problem.samples(p),
                         regularization, problem.n, iters, converged_levels, gs, gt, min_correlation)


def summarise_fit(p, s, init_matrix, init_samples, final_samples, regularization, n_points, iters,
                  converged_levels, gs, gt, min_correlation=MIN_CORRELATION) -> AffineResult:
    """The closing statistics and checks of a fit, as an :class:`AffineResult`.

    ``init_samples`` / ``final_samples``: ``(f(Mx), g(x))`` over the finest level's points
    inside the source at the centre-of-mass start / at the estimate (empty arrays where
    the parameters are invalid or no point lands inside). ``n_points``: that level's
    number of sample points. ``gs`` / ``gt``: the global means the images were divided by.
    Shared by :func:`estimate_affine` and :mod:`datxai.register.batched`.
    """
    matrix = spm_matrix(p)
    init_params = spm_imatrix(init_matrix)
    fv0, g0 = init_samples
    initial_cost = np.inf  # re-fit the scale at the start for a fair comparison
    if g0.size and g0 @ g0 > 0:
        s0 = float(fv0 @ g0 / (g0 @ g0))
        initial_cost = _cost_from_samples(init_params, s0, fv0, g0, regularization)
    if np.all(np.isfinite(p)) and np.isfinite(s):
        fv, gi = final_samples
        final_cost = _cost_from_samples(p, s, fv, gi, regularization) if fv.size else np.inf
    else:
        final_cost, fv, gi = np.nan, None, None
    flags = []
    corr = np.nan
    if not (np.all(np.isfinite(matrix)) and np.isfinite(final_cost) and np.isfinite(s)):
        flags.append("nonfinite")
    else:
        if final_cost > initial_cost * (1 + 1e-9):
            flags.append("cost_increase")
        flags += _plausibility_flags(matrix, p, s)
        if fv.size > 2 and np.std(fv) > 0 and np.std(gi) > 0:
            corr = float(np.corrcoef(fv, gi)[0, 1])
        if not corr >= min_correlation:
            flags.append("poor_fit")
        if fv.size < MIN_INSIDE * n_points:
            flags.append("outside_fov")
    converged = bool(converged_levels[-1]) if converged_levels else False
    if not converged:
        flags.append("not_converged")
    diverged = any(fl != "not_converged" for fl in flags)
    return AffineResult(
        matrix=matrix,
        params=np.asarray(p, dtype=float),
        scale=float(s * gs / gt) if gt > 0 and gs > 0 else float(s),
        cost=float(final_cost),
        initial_cost=float(initial_cost),
        correlation=float(corr),
        iterations=int(sum(iters)),
        iterations_per_level=list(iters),
        converged=converged,
        diverged=diverged,
        flags=flags,
        initial_matrix=np.asarray(init_matrix, dtype=float),
    )


def register(source, source_affine, template, template_affine, fwhm_mm: float = 8.0, **kwargs) -> AffineResult:
    """Smooth both images by ``fwhm_mm`` and :func:`estimate_affine` (convenience)."""
    return estimate_affine(source, source_affine, template, template_affine, fwhm_mm=fwhm_mm, **kwargs)
