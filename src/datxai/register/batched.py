"""The affine estimator of :mod:`datxai.register.affine` for a batch of scans at once, in torch (GPU when present).

Same model, same algorithm, same result type: every scan of the batch runs its
own Gauss-Newton / Levenberg-Marquardt iterations (its own damping, its own
convergence, its own iteration count) exactly as :func:`~datxai.register.affine.estimate_affine`
does, but the expensive part of each step, interpolating the source and its
three gradient images at the template's sample points and forming
``J^T J`` / ``J^T r``, is one batched tensor operation for all scans that are
still iterating:

* the sources (divided by their global means) and their gradient images
  (``torch.gradient``, the same central differences as ``np.gradient``) are one
  ``(B, 4, X, Y, Z)`` float32 tensor on the device;
* sampling is ``torch.nn.functional.grid_sample`` (trilinear, border padding,
  ``align_corners=True``: voxel centres at -1 and 1), the points that fall outside
  a source are masked out of its sums, as ``spm_affreg`` leaves them out;
* ``J^T r`` and ``J^T g`` are accumulated in float64, ``J^T J`` from float32
  (it sets the step, not the optimum), as in the numpy version.

The 13 x 13 damped solves, the penalty and the closing statistics are the numpy
version's own functions (:func:`~datxai.register.affine.damped_step`,
:func:`~datxai.register.affine.summarise_fit`), run per scan on the host. The two
versions agree to float32 rounding of the sums; ``tests/test_register_batched.py``
compares them on known transforms. Scans of different shapes are run as separate
batches; all share one template.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from .affine import (
    MIN_CORRELATION,
    AffineResult,
    centre_of_mass_start,
    check_inputs,
    damped_step,
    global_mean,
    level_points,
    smooth_mm,
    spm_imatrix,
    spm_matrix,
    spm_matrix_derivatives,
    summarise_fit,
    zoom_shear_penalty,
)

log = logging.getLogger(__name__)

POINTS_PER_CHUNK = 4_000_000  # sample points x scans per tensor operation (bounds the temporaries)


def resolve_device(name: str = "auto"):
    """:func:`datxai.devices.resolve_device` for ``normalize.device``."""
    from ..devices import resolve_device as resolve

    return resolve(name, key="normalize.device")


class _BatchProblem:
    """Residuals, costs and linearisations of one sampling level for a batch of sources of one shape.

    ``volumes``: ``(B, 4, Z, Y, X)`` float32 tensor (source / global mean, then its three
    gradient images, axes reversed so that voxel coordinates ``(i, j, k)`` are grid_sample's ``(x, y, z)``); ``src_inv``: ``(B, 4, 4)`` inverse source affines; ``g`` (n,) and
    ``x`` (n, 4): the level's template values and homogeneous points (mm). Methods take
    ``rows`` (indices into the batch) and per-row parameters, so that only the scans
    still iterating are computed.
    """

    def __init__(self, volumes, src_inv: np.ndarray, g: np.ndarray, x: np.ndarray, weight: float):
        import torch

        self.torch = torch
        self.volumes = volumes
        dev = volumes.device
        self.device = dev
        self.n = len(g)
        self.weight = weight
        self.shape = tuple(volumes.shape[2:])[::-1]  # (X, Y, Z): the volumes are stored (B, 4, Z, Y, X)
        self.src_inv = torch.as_tensor(src_inv, dtype=torch.float64, device=dev)
        self.g = torch.as_tensor(g, dtype=torch.float64, device=dev)
        self.g_host = np.asarray(g, dtype=float)
        self.xt = torch.as_tensor(np.ascontiguousarray(x.T), dtype=torch.float64, device=dev)  # (4, n)
        self.xt32 = self.xt.float()
        self.upper = torch.as_tensor(np.asarray(self.shape, dtype=float) - 1.0, device=dev)[None, :, None]
        # voxel index -> grid_sample's [-1, 1] (align_corners=True); an axis of one voxel maps to 0
        self.to_unit = torch.as_tensor([2.0 / max(n - 1, 1) for n in self.shape], dtype=torch.float64,
                                       device=dev)[None, :, None]

    @staticmethod
    def valid(p) -> bool:
        return bool(np.all(np.isfinite(p)) and np.all(p[6:9] > 0))

    def _voxels(self, rows, params):
        """Voxel coordinates ``(k, 3, n)`` float64 of the sample points in each source, and the inside mask ``(k, n)``."""
        torch = self.torch
        m = torch.as_tensor(np.stack([spm_matrix(p) for p in params]), dtype=torch.float64, device=self.device)
        vox = (self.src_inv[rows] @ m)[:, :3] @ self.xt
        inside = ((vox >= 0) & (vox <= self.upper)).all(dim=1)
        return vox, inside

    def _sample(self, rows, vox, channels: int):
        """The first ``channels`` volumes of each row at ``vox``: ``(k, channels, n)`` float32."""
        grid = (vox * self.to_unit - 1.0).transpose(1, 2)  # (k, n, 3): (i, j, k) = grid_sample's (W, H, D)
        grid = grid.float()[:, None, None]  # (k, 1, 1, n, 3)
        sample = self.torch.nn.functional.grid_sample
        idx = rows.tolist()
        if idx == list(range(idx[0], idx[0] + len(idx))):  # a run of rows: a view, no copy of the volumes
            out = sample(self.volumes[idx[0]:idx[0] + len(idx), :channels], grid, mode="bilinear",
                         padding_mode="border", align_corners=True)
        elif self.device.type == "cuda":  # gathering the rows' volumes is cheap on the GPU
            out = sample(self.volumes[rows, :channels], grid, mode="bilinear", padding_mode="border",
                         align_corners=True)
        else:  # on the CPU copying the volumes would cost more than the sampling: one view per row
            out = self.torch.cat([sample(self.volumes[b:b + 1, :channels], grid[j:j + 1], mode="bilinear",
                                         padding_mode="border", align_corners=True) for j, b in enumerate(idx)])
        return out[:, :, 0, 0, :]

    def _rows(self, rows):
        return self.torch.as_tensor(np.asarray(rows, dtype=np.int64), device=self.device)

    def samples(self, rows, params):
        """Per row: ``(f(Mx) float32, g(x) float64)`` over the points inside (host arrays; empty if invalid)."""
        out = [(np.zeros(0, dtype=np.float32), np.zeros(0))] * len(rows)
        ok = [i for i, p in enumerate(params) if self.valid(p)]
        if ok:
            r = self._rows([rows[i] for i in ok])
            vox, inside = self._voxels(r, [params[i] for i in ok])
            fv = self._sample(r, vox, 1)[:, 0].cpu().numpy()
            inside = inside.cpu().numpy()
            for j, i in enumerate(ok):
                out[i] = (fv[j][inside[j]], self.g_host[inside[j]])
        return out

    def _chunks(self, n_rows: int):
        """Row ranges that keep the per-point temporaries (~100 bytes per point and row) near 400 MB."""
        step = max(1, POINTS_PER_CHUNK // max(self.n, 1))
        return [(a, min(a + step, n_rows)) for a in range(0, n_rows, step)]

    def costs(self, rows, params, scales) -> np.ndarray:
        """Cost per row (mean squared residual over the points inside plus penalty); inf where invalid or none inside."""
        if len(rows) > self._chunks(len(rows))[0][1]:
            return np.concatenate([self.costs(rows[a:b], params[a:b], scales[a:b]) for a, b in self._chunks(len(rows))])
        torch = self.torch
        out = np.full(len(rows), np.inf)
        ok = [i for i, (p, s) in enumerate(zip(params, scales)) if self.valid(p) and np.isfinite(s)]
        if not ok:
            return out
        r_idx = self._rows([rows[i] for i in ok])
        vox, inside = self._voxels(r_idx, [params[i] for i in ok])
        fv = self._sample(r_idx, vox, 1)[:, 0].double()
        s = torch.as_tensor(np.asarray([scales[i] for i in ok], dtype=float), device=self.device)[:, None]
        mask = inside.double()
        r = (fv - s * self.g) * mask
        n_in = mask.sum(dim=1)
        sse = (r * r).sum(dim=1)
        sse, n_in = sse.cpu().numpy(), n_in.cpu().numpy()
        for j, i in enumerate(ok):
            if n_in[j] > 0:
                q = zoom_shear_penalty(params[i], self.weight)[0]
                out[i] = float(sse[j] / n_in[j] + q @ q)
        return out

    def initial_scales(self, rows, params) -> np.ndarray:
        """Least-squares intensity scale per row at ``params`` (1 where the template has no signal inside)."""
        out = np.ones(len(rows))
        for i, (fv, gi) in enumerate(self.samples(rows, params)):
            if gi @ gi > 0:
                out[i] = float(fv @ gi / (gi @ gi))
        return out

    def linearise(self, rows, params, scales):
        """Per row: cost, half-gradient (13,) and Gauss-Newton Hessian (13, 13) in (p, s) -- as ``_Problem.linearise``."""
        if len(rows) > self._chunks(len(rows))[0][1]:
            return [lin for a, b in self._chunks(len(rows)) for lin in self.linearise(rows[a:b], params[a:b], scales[a:b])]
        torch = self.torch
        r_idx = self._rows(rows)
        vox, inside = self._voxels(r_idx, params)
        vals = self._sample(r_idx, vox, 4)  # f and its gradient images at the same points
        mask = inside.double()
        n_in = mask.sum(dim=1).clamp(min=1.0)
        s = torch.as_tensor(np.asarray(scales, dtype=float), device=self.device)[:, None]
        gm = self.g * mask  # template values, zero outside
        r = vals[:, 0].double() * mask - s * gm
        gmm = self.src_inv[r_idx][:, :3, :3].transpose(1, 2) @ vals[:, 1:].double()  # d f / d y_mm (k, 3, n)
        o_r = ((gmm * r[:, None]) @ self.xt.T).reshape(len(rows), 12)
        o_g = ((gmm * gm[:, None]) @ self.xt.T).reshape(len(rows), 12)
        o = ((gmm.float() * inside[:, None])[:, :, None, :] * self.xt32[None, None]).reshape(len(rows), 12, -1)
        oo = (o @ o.transpose(1, 2)).double()
        d = torch.as_tensor(np.stack([spm_matrix_derivatives(p)[:, :3, :].reshape(12, 12) for p in params]),
                            dtype=torch.float64, device=self.device)
        h = torch.empty((len(rows), 13, 13), dtype=torch.float64, device=self.device)
        h[:, :12, :12] = d @ oo @ d.transpose(1, 2)
        h[:, :12, 12] = -(d @ o_g[:, :, None])[:, :, 0]
        h[:, 12, :12] = h[:, :12, 12]
        h[:, 12, 12] = (gm * gm).sum(dim=1)
        grad = torch.cat([(d @ o_r[:, :, None])[:, :, 0], -(gm * r).sum(dim=1, keepdim=True)], dim=1)
        h /= n_in[:, None, None]
        grad /= n_in[:, None]
        sse = ((r * r).sum(dim=1) / n_in).cpu().numpy()
        h, grad = h.cpu().numpy(), grad.cpu().numpy()
        out = []
        for j, p in enumerate(params):
            q, jq = zoom_shear_penalty(p, self.weight)
            h[j, :12, :12] += jq.T @ jq
            grad[j, :12] += jq.T @ q
            out.append((float(sse[j] + q @ q), grad[j], h[j]))
        return out


def _estimate_same_shape(sources, affines, g_img, template_affine, sampling_mm, regularization, max_iterations,
                         tolerance, init_matrices, min_correlation, device, gt) -> list[AffineResult]:
    import torch

    gs = [global_mean(src) for src in sources]
    f = np.stack([src / m if m > 0 else src for src, m in zip(sources, gs)]).astype(np.float32)
    with torch.no_grad():
        ft = torch.as_tensor(f, device=device)
        volumes = torch.stack([ft, *torch.gradient(ft, dim=(1, 2, 3))], dim=1)  # (B, 4, X, Y, Z)
        # stored as (B, 4, Z, Y, X): grid_sample's last grid coordinate indexes dimension 2 (D), its first the last (W)
        volumes = volumes.permute(0, 1, 4, 3, 2).contiguous()
        del ft
        src_inv = np.stack([np.linalg.inv(a) for a in affines])
        n = len(sources)
        rows_all = list(range(n))
        p = [spm_imatrix(m) for m in init_matrices]
        s = [None] * n
        iters = [[] for _ in rows_all]
        converged_levels = [[] for _ in rows_all]
        problem = None
        for level, spacing in enumerate(sampling_mm):
            g, x = level_points(g_img, template_affine, spacing)
            problem = _BatchProblem(volumes, src_inv, g, x, regularization)
            if level == 0:
                s = list(problem.initial_scales(rows_all, p))
            lam = [1e-3] * n
            state = {b: lin for b, lin in zip(rows_all, problem.linearise(rows_all, p, s))}  # b -> (cost, grad, h)
            n_it = [0] * n
            converged = [False] * n
            active = list(rows_all)
            for it in range(1, max_iterations + 1):
                if not active:
                    break
                for b in active:
                    n_it[b] = it
                # damping search, in lock-step: each round tries one step per scan still searching
                searching, trial, improved = list(active), {}, set()
                while searching:
                    proposals = []
                    for b in searching:
                        step, lam[b] = damped_step(state[b][2], state[b][1], state[b][0], lam[b], tolerance)
                        if step is not None:
                            proposals.append((b, p[b] + step[:12], s[b] + step[12]))
                    if not proposals:
                        break
                    costs = problem.costs([b for b, _, _ in proposals], [q for _, q, _ in proposals],
                                          [t for _, _, t in proposals])
                    searching = []
                    for (b, p_new, s_new), c_new in zip(proposals, costs):
                        if c_new < state[b][0]:
                            improved.add(b)
                            trial[b] = (p_new, s_new, c_new)
                        else:
                            lam[b] *= 10
                            searching.append(b)
                relinearise = []
                for b in active:
                    if b not in improved:  # no descent direction left: a (local) minimum
                        converged[b] = True
                        continue
                    p_new, s_new, c_new = trial[b]
                    cost = state[b][0]
                    rel = (cost - c_new) / max(cost, 1e-30)
                    p[b], s[b] = p_new, s_new
                    lam[b] = max(lam[b] / 10, 1e-7)
                    if rel < tolerance:  # converged: no need to linearise at the new point
                        state[b] = (c_new,) + state[b][1:]
                        converged[b] = True
                    else:
                        relinearise.append(b)
                if relinearise:
                    for b, lin in zip(relinearise, problem.linearise(relinearise, [p[b] for b in relinearise],
                                                                     [s[b] for b in relinearise])):
                        state[b] = lin
                active = relinearise
            for b in rows_all:
                iters[b].append(n_it[b])
                converged_levels[b].append(converged[b])
            log.debug("level %d (%.1f mm, %d points): iterations %s", level, spacing, problem.n, n_it)
        init_params = [spm_imatrix(m) for m in init_matrices]
        start = problem.samples(rows_all, init_params)
        final = problem.samples(rows_all, p)
    return [summarise_fit(p[b], s[b], init_matrices[b], start[b], final[b], regularization, problem.n, iters[b],
                          converged_levels[b], gs[b], gt, min_correlation) for b in rows_all]


def estimate_affine_batch(
    sources: Sequence[np.ndarray],
    source_affines: Sequence[np.ndarray],
    template: np.ndarray,
    template_affine: np.ndarray,
    sampling_mm=(8.0, 4.0),
    regularization: float = 0.01,
    max_iterations: int = 64,
    tolerance: float = 1e-6,
    fwhm_mm: float = 0.0,
    init_matrices: Sequence[np.ndarray] | None = None,
    min_correlation: float = MIN_CORRELATION,
    device: str = "auto",
) -> list[AffineResult]:
    """:func:`~datxai.register.affine.estimate_affine` for every source against one template, batched.

    Parameters are those of ``estimate_affine`` (``init_matrices``: one start per
    source, default the centres of mass), plus ``device`` (``auto``, ``cpu``,
    ``cuda``). Returns one :class:`~datxai.register.affine.AffineResult` per
    source, in order. Memory on the device: the sources and their gradient images
    (16 bytes per voxel per scan) and ~60 bytes per sample point per scan.
    """
    if len(sources) != len(source_affines):
        raise ValueError(f"{len(sources)} sources but {len(source_affines)} affines")
    if init_matrices is not None and len(init_matrices) != len(sources):
        raise ValueError(f"{len(sources)} sources but {len(init_matrices)} start matrices")
    if not len(sources):
        return []
    dev = resolve_device(device)
    checked = []
    for i, src in enumerate(sources):
        try:
            src, template_checked, sampling = check_inputs(src, template, sampling_mm)
        except ValueError as exc:
            raise ValueError(f"source {i} of {len(sources)}: {exc}") from None
        checked.append(src)
    template, sampling_mm = template_checked, sampling
    template_affine = np.asarray(template_affine, dtype=float)
    affines = [np.asarray(a, dtype=float) for a in source_affines]
    if fwhm_mm > 0:
        checked = [smooth_mm(src, a, fwhm_mm) for src, a in zip(checked, affines)]
        template = smooth_mm(template, template_affine, fwhm_mm)
    gt = global_mean(template)
    g_img = template / gt if gt > 0 else template
    starts = [np.asarray(m, dtype=float) for m in init_matrices] if init_matrices is not None else \
        [centre_of_mass_start(src, a, template, template_affine) for src, a in zip(checked, affines)]
    results: list[AffineResult | None] = [None] * len(checked)
    by_shape: dict[tuple, list[int]] = {}
    for i, src in enumerate(checked):
        by_shape.setdefault(src.shape, []).append(i)
    for shape, idx in by_shape.items():
        log.info("batched affine estimation: %d source(s) of shape %s on %s", len(idx), shape, dev)
        out = _estimate_same_shape([checked[i] for i in idx], [affines[i] for i in idx], g_img, template_affine,
                                   sampling_mm, regularization, max_iterations, tolerance, [starts[i] for i in idx],
                                   min_correlation, dev, gt)
        for i, res in zip(idx, out):
            results[i] = res
    return results
