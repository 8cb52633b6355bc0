"""Filtered back-projection (parallel beam), batched over slices and subjects.

Geometry: :func:`fbp` takes the Radon convention: a sinogram ``p[..., a, b]``
holds, for the angle ``theta_a`` (degrees), the line integral (value * mm) of the
slice ``f(x, y)`` along ``x cos(theta) + y sin(theta) = s_b`` with
``s_b = (b - (n_bins - 1) / 2) * bin_mm``. The reconstruction
``f[..., i, j] = f(x_i, y_j)`` lives on ``output_size`` voxels of ``bin_mm``
per side centred on the centre of rotation (``x_i = (i - (m - 1) / 2) * bin_mm``),
i.e. axis 0 is x (patient left -> right) and axis 1 is y (posterior -> anterior).
:func:`reconstruct_frames` takes DICOM frames and angles (:mod:`datxai.geometry`:
0 degrees posterior, counter-clockwise seen from the feet) and converts them
(``alpha = -theta``, :func:`datxai.geometry.radon_angles`).

The algorithm follows Kak & Slaney (1988, ch. 3) and MATLAB ``iradon``:

1. zero-pad each projection to ``max(64, 2 ** ceil(log2(2 n_bins)))`` samples;
2. filter in Fourier space with the band-limited ramp built from its spatial
   impulse response (Kak & Slaney eq. 61, no DC bias), apodised by the window
   stretched to the cut-off (MATLAB's frequency scaling ``d``) and zero above it;
3. back-project with linear interpolation along ``s``;
4. scale by the angular weight (``pi / n_angles`` for uniform views over 180 or
   360 degrees) and by ``1 / bin_mm`` so that the result is in value units
   (a uniform disc of value ``c`` gives ``~c``).

Back-projection is a fixed sparse operator ``(m * m, n_views * n_bins)`` (two
non-zeros per voxel and view; views 180 degrees apart are first added, bins
reversed, so 360-degree data costs one half-turn), cached per geometry and
applied to all slices of all subjects at once with ``scipy.sparse``; the filtering uses ``scipy.fft``
in float32. numpy is the only engine: a torch one (CPU or CUDA) was measured and removed (BENCHMARKS.md,
FBP): per study of 128 slices x 120 views x 128 bins it took 0.031 s (CPU) or 0.008 s (CUDA, warm) where
numpy takes 0.067 s, a few hundredths of a second in a ``reconstruct_spect`` job of ~2 s per subject.
"""

from __future__ import annotations

import functools
import logging
import math

import numpy as np
import scipy.fft
import scipy.sparse as sp

from ..checks import check_choice, check_range
from ..geometry import radon_angles

log = logging.getLogger(__name__)

FILTERS = ("ram-lak", "shepp-logan", "cosine", "hamming", "hann")
INTERPOLATIONS = ("linear", "nearest")


def padded_length(n_bins: int) -> int:
    """FFT length used for filtering (MATLAB/skimage ``iradon``): ``max(64, 2 ** ceil(log2(2 n_bins)))``."""
    return max(64, int(2 ** math.ceil(math.log2(2 * n_bins))))


def frequency_scaling(cutoff_cycles_per_cm: float | None, bin_mm: float) -> float:
    """MATLAB ``iradon``'s ``d``: the cut-off as a fraction of Nyquist, capped at 1.

    Nyquist is ``1 / (2 * bin_cm)`` cycles/cm; ``None`` means no cut-off (``d = 1``).
    """
    if cutoff_cycles_per_cm is None:
        return 1.0
    check_range("reconstruct.cutoff_cycles_per_cm", cutoff_cycles_per_cm, 0, low_inclusive=False)
    check_range("bin_mm", bin_mm, 0, low_inclusive=False)
    nyquist = 1.0 / (2.0 * bin_mm / 10.0)
    return float(min(1.0, cutoff_cycles_per_cm / nyquist))


def fourier_filter(n_bins: int, filter_name: str = "shepp-logan", d: float = 1.0) -> np.ndarray:
    """Half-spectrum filter ``(L // 2 + 1,)`` for ``numpy.fft.rfft`` of length ``L = padded_length(n_bins)``.

    Band-limited ramp (Kak & Slaney eq. 61; ``~2 |f|`` with ``f`` in cycles per
    sample, the factor 2 cancelled by the ``pi / (2 n)`` of ``iradon``) times
    the window of ``filter_name`` evaluated at ``w / d``; zero where
    ``w > pi d``. Identical to MATLAB ``iradon``'s ``designFilter``.
    """
    check_choice("reconstruct.filter", filter_name, FILTERS)
    check_range("frequency scaling d", d, 0, 1, low_inclusive=False)
    order = padded_length(n_bins)
    n = np.arange(order // 2 + 1)
    h = np.zeros(order // 2 + 1)
    h[0] = 0.25
    h[1::2] = -1.0 / (np.pi * n[1::2]) ** 2
    h = np.concatenate([h, h[-2:0:-1]])  # even impulse response over the padded length
    filt = 2.0 * np.real(np.fft.fft(h))[: order // 2 + 1]
    w = 2.0 * np.pi * n / order  # radians per sample, 0 .. pi
    x = w[1:] / d
    if filter_name == "shepp-logan":
        filt[1:] *= np.sin(x / 2) / (x / 2)
    elif filter_name == "cosine":
        filt[1:] *= np.cos(x / 2)
    elif filter_name == "hamming":
        filt[1:] *= 0.54 + 0.46 * np.cos(x)
    elif filter_name == "hann":
        filt[1:] *= (1 + np.cos(x)) / 2
    filt[w > np.pi * d] = 0.0
    return filt


def angle_weights(angles_deg) -> np.ndarray:
    """Quadrature weights (radians) of the views for ``integral_0^pi d theta``.

    A view at ``theta`` carries the same line integrals as one at ``theta + 180``
    (with ``s`` reversed), so the angles are folded onto a circle of period
    180 degrees and each view gets half the gap to its neighbours there. Uniform
    views over 180 or 360 degrees get ``pi / n`` each (MATLAB/skimage scaling).
    """
    a = np.mod(np.asarray(angles_deg, dtype=float), 180.0)
    if a.ndim != 1 or a.size < 2:
        raise ValueError(f"need a 1-D list of at least 2 angles, got shape {a.shape}")
    order = np.argsort(a, kind="stable")
    s = a[order]
    gaps = np.diff(np.r_[s, s[0] + 180.0])  # gap after each sorted view
    w_sorted = 0.5 * (gaps + np.roll(gaps, 1))
    w = np.empty_like(w_sorted)
    w[order] = w_sorted
    return np.deg2rad(w)


def fold_opposite_views(angles_deg) -> tuple[np.ndarray, np.ndarray]:
    """Pair views 180 degrees apart (``p(theta + 180, s) = p(theta, -s)``).

    Returns ``keep`` (indices of the views that are back-projected) and
    ``partner`` (for each kept view the index of its opposite view, or -1).
    Adding the partner's bin-reversed filtered projection to the kept one
    before back-projection is exact (bin ``b`` at ``theta + 180`` is bin
    ``n_bins - 1 - b`` at ``theta``) and halves the work for 360-degree data.
    """
    a = np.mod(np.asarray(angles_deg, dtype=float), 360.0)
    free = {}
    keep, partner = [], []
    for i, ai in enumerate(a):
        k = round(float(np.mod(ai + 180.0, 360.0)), 6) % 360.0
        j = free.get(k)
        if j is not None and partner[j] < 0:
            partner[j] = i
            free.pop(k)
            continue
        free.setdefault(round(float(ai), 6) % 360.0, len(keep))
        keep.append(i)
        partner.append(-1)
    return np.asarray(keep, dtype=np.int64), np.asarray(partner, dtype=np.int64)


@functools.lru_cache(maxsize=8)
def _backprojector(angles_key: tuple, n_bins: int, output_size: int, interpolation: str, circle: bool) -> sp.csr_matrix:
    """Sparse back-projection ``(m * m, n_angles * n_bins)``, float32, interpolation weights only."""
    theta = np.deg2rad(np.asarray(angles_key, dtype=float))
    m = output_size
    c = np.arange(m) - (m - 1) / 2.0  # voxel centres, in bins
    x, y = np.meshgrid(c, c, indexing="ij")
    x, y = x.ravel(), y.ravel()
    inside = np.ones(m * m, bool) if not circle else (x**2 + y**2 <= (n_bins / 2.0) ** 2)
    # fractional bin index of every (voxel, view): s / bin + (n_bins - 1) / 2
    # (float32 is ample: bin positions to ~1e-5 bins)
    cos, sin = np.cos(theta).astype(np.float32), np.sin(theta).astype(np.float32)
    b = np.outer(x.astype(np.float32), cos)
    b += np.outer(y.astype(np.float32), sin)
    b += np.float32((n_bins - 1) / 2.0)
    wv = ((b >= 0) & (b <= n_bins - 1) & inside[:, None]).astype(np.float32)
    col0 = (np.arange(theta.size, dtype=np.int32) * n_bins)[None, :]
    # CSR built directly: every row has the same number of slots (sorted columns);
    # invalid (voxel, view) pairs get weight 0 and are dropped by eliminate_zeros
    if interpolation == "nearest":
        cols = (col0 + np.clip(np.rint(b), 0, n_bins - 1).astype(np.int32))[..., None]
        vals = wv[..., None]
    else:  # linear, as numpy.interp with zero outside the detector
        i0 = np.clip(np.floor(b), 0, max(n_bins - 2, 0)).astype(np.int32)
        fr = b - i0
        cols = np.empty(b.shape + (2,), np.int32)
        cols[..., 0] = col0 + i0
        cols[..., 1] = cols[..., 0] + 1
        vals = np.empty(b.shape + (2,), np.float32)
        vals[..., 1] = wv * fr
        vals[..., 0] = wv - vals[..., 1]
    per_row = cols.shape[1] * cols.shape[2]
    indptr = np.arange(m * m + 1, dtype=np.int64) * per_row
    if indptr[-1] < np.iinfo(np.int32).max:
        indptr = indptr.astype(np.int32)
    a = sp.csr_matrix((vals.ravel(), cols.ravel(), indptr), shape=(m * m, theta.size * n_bins), dtype=np.float32)
    a.eliminate_zeros()
    log.debug("back-projector %dx%d from %d views x %d bins: %d non-zeros", m, m, theta.size, n_bins, a.nnz)
    return a


def fbp(
    sinograms,
    angles_deg,
    bin_mm: float,
    filter_name: str = "shepp-logan",
    cutoff_cycles_per_cm: float | None = 1.25,
    output_size: int | None = None,
    interpolation: str = "linear",
    circle: bool = True,
) -> np.ndarray:
    """Reconstruct slices from parallel-beam sinograms.

    Parameters
    ----------
    sinograms : array ``(..., n_angles, n_bins)``
        Line integrals in value * mm; any leading batch dimensions (slices,
        subjects).
    angles_deg : ``(n_angles,)``
        Projection angles (degrees, Radon convention: lines ``x cos + y sin = s``; see the module docstring).
    bin_mm : float
        Detector bin size (mm); also the voxel size of the result.
    filter_name : one of :data:`FILTERS`
    cutoff_cycles_per_cm : float or None
        Filter cut-off (cycles/cm), converted to MATLAB's ``d`` and capped at Nyquist.
    output_size : int or None
        Side ``m`` of the square result (``None``: ``n_bins``).
    interpolation : ``'linear'`` or ``'nearest'``
    circle : bool
        Zero the voxels outside the field of view (radius ``n_bins / 2`` bins).

    Returns
    -------
    numpy array ``(..., m, m)`` float32 indexed ``[x, y]`` (value units).
    """
    check_choice("reconstruct.filter", filter_name, FILTERS)
    check_choice("reconstruct.interpolation", interpolation, INTERPOLATIONS)
    angles = np.asarray(angles_deg, dtype=float).ravel()
    sinograms = np.asarray(sinograms, dtype=np.float32)
    shape = sinograms.shape
    if len(shape) < 2 or shape[-2] != angles.size:
        raise ValueError(f"sinograms must be (..., n_angles={angles.size}, n_bins), got shape {shape}")
    n_bins = shape[-1]
    check_range("number of detector bins", n_bins, 2)
    m = check_range("reconstruct.output_size", int(output_size) if output_size is not None else n_bins, 1)
    # fourier_filter is ~2|f| (cycles/sample); |f| in cycles/mm is that / (2 bin_mm)
    filt = fourier_filter(n_bins, filter_name, frequency_scaling(cutoff_cycles_per_cm, bin_mm)) / (2.0 * bin_mm)
    order = padded_length(n_bins)
    batch = shape[:-2]
    weights = angle_weights(angles).astype(np.float32)[:, None]  # quadrature over theta, radians
    keep, partner = fold_opposite_views(angles)
    paired = np.flatnonzero(partner >= 0)
    key = (tuple(np.round(angles[keep], 9).tolist()), n_bins, m, interpolation, bool(circle))
    n_keep = keep.size
    # Opposite views are folded *before* filtering: the filter is an even (circular, L >= 2 n_bins) convolution,
    # so it commutes with reversing the bins and filter(a) + reverse(filter(b)) = filter(a + reverse(b)); for
    # 360-degree data this halves the FFTs. The angular weights are applied per view before folding.
    p = sinograms.reshape(-1, angles.size, n_bins) * weights
    pk = p[:, keep]
    pk[:, paired] += p[:, partner[paired], ::-1]
    # scipy.fft keeps float32 (numpy.fft would compute in float64): ~1e-7 relative, far below the 1e-3 check
    qk = scipy.fft.irfft(scipy.fft.rfft(pk, n=order, axis=-1) * filt.astype(np.float32), n=order, axis=-1)[..., :n_bins]
    qk = np.ascontiguousarray(qk.reshape(qk.shape[0], n_keep * n_bins).T)  # (n_keep * n_bins, B)
    out = _backprojector(*key) @ qk  # (m * m, B)
    return np.ascontiguousarray(out.T).reshape(*batch, m, m)


def reconstruct_frames(frames, angles_deg, bin_mm: float, **kwargs):
    """Reconstruct a native volume from projection frames.

    Parameters
    ----------
    frames : array ``(..., n_frames, n_rows, n_bins)``
        Frames as stored in DICOM (row 0 superior), value * mm per bin; leading
        dimensions (subjects) are batched.
    angles_deg : ``(n_frames,)``
        DICOM angle of each frame (:mod:`datxai.geometry`; converted here to the
        Radon angles :func:`fbp` takes).
    bin_mm : float
    **kwargs : passed to :func:`fbp`.

    Returns
    -------
    numpy array ``(..., m, m, n_rows)`` float32 in the native space of
    :func:`datxai.geometry.native_affine` (RAS+, axis 2 inferior -> superior).
    """
    frames = np.asarray(frames)
    shape = frames.shape
    if len(shape) < 3:
        raise ValueError(f"frames must be (..., n_frames, n_rows, n_bins), got shape {shape}")
    # sinogram of row r: frames[..., :, r, :]; move rows in front of the views
    sino = np.moveaxis(frames, -2, -3)
    vol = fbp(sino, radon_angles(angles_deg), bin_mm, **kwargs)  # (..., n_rows, m, m)
    # row 0 is superior; native z grows superior -> flip the row axis, put it last
    return np.ascontiguousarray(np.moveaxis(vol[..., ::-1, :, :], -3, -1))
