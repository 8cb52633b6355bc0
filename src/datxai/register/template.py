"""The FP-CIT template: an atlas-derived seed, refined by averaging registered scans.

Its frame: the workflow seeds it with, and finally places it on, the MNI anchor (:mod:`datxai.mni_anchor`:
the seed as the study's camera and reconstruction see it at the MNI pose), ``normalize.template_space``.

All templates live on the MNI analysis :class:`~datxai.grid.Grid` (RAS+,
symmetric about x = 0, so flipping axis 0 mirrors left and right). Units are
those of the seed: non-displaceable brain background = 1, striatum ~ 1 + 2.5.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
from scipy.ndimage import gaussian_filter

from ..grid import Grid
from .affine import FWHM_TO_SIGMA, estimate_affine, reslice_to_grid, smooth_mm
from .selection import select_template_subjects  # noqa: F401  (re-exported: the template's subjects)

log = logging.getLogger(__name__)

# Seed uptake above the brain background (=1), from typical FP-CIT binding ratios,
# and the extracerebral (scalp, skull, soft tissue) uptake visible in FP-CIT SPECT.
SEED_BINDING = {"striatum": 2.5, "Thalamus": 0.45, "Brain-Stem": 0.4, "Lateral_Ventricle": -0.6}
SEED_SHELL_UPTAKE = 0.3
SEED_SHELL_MM = 10.0


def symmetrise(image: np.ndarray) -> np.ndarray:
    """Left-right symmetric version ``(I + flip_x(I)) / 2`` of an image on a grid symmetric about x = 0."""
    image = np.asarray(image, dtype=np.float32)
    return (0.5 * (image + image[::-1])).astype(np.float32)


def seed_template(atlas, fwhm_mm: float = 12.0, binding: dict | None = None,
                  shell_uptake: float = SEED_SHELL_UPTAKE, shell_mm: float = SEED_SHELL_MM) -> np.ndarray:
    """A DAT-like image in MNI space built from the atlas, on ``atlas.grid``.

    Intracranial volume (the atlas brain mask, holes filled) = 1, plus
    ``binding`` times the probability of the striata (caudate + putamen +
    accumbens), thalamus and brain stem, minus the ventricles; an extracerebral
    shell of ``shell_mm`` around the brain at ``shell_uptake`` (FP-CIT SPECT
    shows scalp and soft-tissue activity, and the head outline is what an
    affine fit leans on most). Clipped at 0, smoothed to ``fwhm_mm`` FWHM,
    symmetrised. float32, ``atlas.grid.shape``.
    """
    from scipy.ndimage import binary_fill_holes, distance_transform_edt

    b = dict(SEED_BINDING, **(binding or {}))
    brain = binary_fill_holes(atlas.brain_mask)
    img = brain.astype(np.float64)
    striatum = sum(atlas.prob(base) for base in ("Caudate", "Putamen", "Accumbens"))
    img += b["striatum"] * np.clip(striatum, 0, 1)
    for base in ("Thalamus", "Brain-Stem", "Lateral_Ventricle"):
        img += b[base] * atlas.prob(base)
    if shell_uptake and shell_mm > 0:
        dist = distance_transform_edt(~brain, sampling=atlas.grid.voxel_mm)
        img += shell_uptake * ((dist > 0) & (dist <= max(shell_mm, atlas.grid.voxel_mm)))
    img = np.clip(img, 0, None)
    sigma = fwhm_mm * FWHM_TO_SIGMA / atlas.grid.voxel_mm
    img = gaussian_filter(img, sigma, mode="constant")
    return symmetrise(img)


def seed_head(atlas, shell_mm: float = SEED_SHELL_MM) -> np.ndarray:
    """The seed's head outline on ``atlas.grid``: the intracranial volume (brain mask, holes filled) and the
    extracerebral shell of ``shell_mm`` around it, as in :func:`seed_template`. float32 0/1 (water-like tissue,
    for the attenuation of :mod:`datxai.mni_anchor`)."""
    from scipy.ndimage import binary_fill_holes, distance_transform_edt

    brain = binary_fill_holes(atlas.brain_mask)
    dist = distance_transform_edt(~brain, sampling=atlas.grid.voxel_mm)
    return (brain | (dist <= max(shell_mm, atlas.grid.voxel_mm))).astype(np.float32)


def phantom_image(shape, affine, scale: float = 1.0, fwhm_mm: float = 8.0) -> np.ndarray:
    """An analytic DAT-like head (ellipsoids, no atlas) sampled on any grid; for tests and benchmarks.

    Brain ellipsoid = 1, caudate/putamen +2.5, thalamus +0.45, brain stem +0.4,
    ventricles -0.6; a frontal/occipital asymmetry and tilted putamina make
    every affine parameter identifiable. ``scale`` shrinks or grows the head
    about the MNI origin. Smoothed by ``fwhm_mm``. float32 of ``shape``.
    """
    ijk = np.indices(tuple(shape), dtype=float).reshape(3, -1)
    xyz = (np.asarray(affine)[:3, :3] @ ijk + np.asarray(affine)[:3, 3:4]) / scale
    img = np.zeros(xyz.shape[1])

    def ell(c, r, val, tilt_deg=0.0):
        d = xyz - np.asarray(c, dtype=float)[:, None]
        t = np.deg2rad(tilt_deg)
        dx, dy = np.cos(t) * d[0] + np.sin(t) * d[1], -np.sin(t) * d[0] + np.cos(t) * d[1]
        inside = (dx / r[0]) ** 2 + (dy / r[1]) ** 2 + (d[2] / r[2]) ** 2 <= 1
        img[inside] += val

    ell((0, -17, 12), (66, 84, 58), 1.0)
    ell((0, 30, 30), (40, 30, 25), 0.25)  # frontal plus
    ell((0, -70, -25), (40, 20, 16), 0.3)  # cerebellum
    for sx in (-1, 1):
        ell((sx * 13, 12, 10), (5, 10, 8), 2.5, tilt_deg=sx * 10)
        ell((sx * 25, 2, 0), (5, 14, 9), 2.5, tilt_deg=-sx * 15)
        ell((sx * 11, -18, 6), (7, 10, 7), 0.45)
        ell((sx * 6, 2, 16), (4, 15, 7), -0.6)
    ell((0, -28, -25), (9, 10, 18), 0.4)
    img = np.clip(img, 0, None).reshape(tuple(shape))
    return smooth_mm(img, affine, fwhm_mm)


def build_template(
    images: Sequence[tuple[np.ndarray, np.ndarray]],
    seed: np.ndarray,
    grid: Grid,
    reference_mask: np.ndarray,
    iterations: int = 2,
    fwhm_mm: float = 8.0,
    subjects: Sequence[str] | None = None,
    average_fwhm_mm: float = 0.0,
    device: str | None = None,
    **estimate_kwargs,
) -> tuple[np.ndarray, list[dict]]:
    """Iteratively register ``images`` to the current template, average, symmetrise.

    Parameters
    ----------
    images : native images ``(data, affine)``.
    seed : starting template on ``grid`` (e.g. :func:`seed_template`).
    reference_mask : boolean mask on ``grid`` (non-specific brain); each resliced
        image is divided by its mean there and multiplied by the seed's mean
        there, so the template keeps the seed's units.
    iterations : rounds of register -> average -> smooth -> symmetrise (0 returns the seed).
    fwhm_mm : smoothing of sources and template for the registration.
    average_fwhm_mm : extra smoothing of each new average (default none: a template blurrier than
        the scans biases the fitted zooms; the registration smooths both anyway).
    device : None registers the images one by one (numpy); ``auto``, ``cpu`` or ``cuda`` registers
        them as one batch in torch (:func:`~datxai.register.batched.estimate_affine_batch`).
    estimate_kwargs : passed to :func:`~datxai.register.affine.estimate_affine`.

    Returns
    -------
    template (float32, ``grid.shape``, left-right symmetric) and one record per
    iteration and image (subject, iteration, cost, diverged, flags). Diverged
    registrations are left out of the average (with a warning).
    """
    seed = np.asarray(seed, dtype=np.float32)
    if seed.shape != grid.shape or reference_mask.shape != grid.shape:
        raise ValueError(f"seed {seed.shape} and reference mask {reference_mask.shape} must have the grid shape {grid.shape}")
    subjects = list(subjects) if subjects is not None else [f"image{i}" for i in range(len(images))]
    ref = np.asarray(reference_mask, dtype=bool)
    ref_level = float(seed[ref].mean())
    template = symmetrise(seed)
    smoothed = [smooth_mm(d, a, fwhm_mm) for d, a in images]
    records = []
    for it in range(int(iterations)):
        tpl_s = smooth_mm(template, grid.affine, fwhm_mm)
        acc, n_used, log_sizes = np.zeros(grid.shape, dtype=np.float64), 0, []
        if device is None:
            fits = [estimate_affine(src_s, aff, tpl_s, grid.affine, **estimate_kwargs)
                    for (_, aff), src_s in zip(images, smoothed)]
        else:
            from .batched import estimate_affine_batch

            fits = estimate_affine_batch(smoothed, [aff for _, aff in images], tpl_s, grid.affine, device=device,
                                         **estimate_kwargs)
        for subj, (data, aff), res in zip(subjects, images, fits):
            records.append({"subject": subj, "iteration": it + 1, "cost": res.cost, "correlation": res.correlation,
                            "diverged": res.diverged, "flags": ",".join(res.flags)})
            if res.diverged:
                log.warning("template iteration %d: %s diverged (%s); left out of the average", it + 1, subj, ",".join(res.flags))
                continue
            out = reslice_to_grid(data, aff, res.matrix, grid)
            level = float(out[ref].mean())
            if not level > 0:
                log.warning("template iteration %d: %s has no positive signal in the reference region; left out", it + 1, subj)
                continue
            acc += out * (ref_level / level)
            n_used += 1
            log_sizes.append(np.log(np.linalg.det(res.matrix[:3, :3])) / 3.0)
        if n_used < 2:
            raise ValueError(f"template iteration {it + 1}: only {n_used} registration(s) usable, need >= 2")
        average = acc / n_used
        size = float(np.exp(np.mean(log_sizes)))
        template = symmetrise(smooth_mm(average, grid.affine, average_fwhm_mm))
        template *= np.float32(ref_level / float(template[ref].mean()))  # the seed's units, after smoothing
        log.info("template iteration %d/%d: averaged %d of %d images; their mean size relative to the template %.4f",
                 it + 1, iterations, n_used, len(images), size)
    return template, records
