"""The MNI anchor of a cohort template: the atlas head at the MNI pose, as this study's camera and reconstruction see it.

Why
---
A template averaged from a cohort's registered scans has no frame of its own: any affine applied to it fits the
cohort as well. The atlas seed (:func:`~datxai.register.template.seed_template`, an ideal DAT image built from
the MNI152 atlases) is in MNI space, but a *reconstructed* FP-CIT scan is not the seed: without attenuation
correction the periphery of the head is less attenuated than its centre, and the least-squares affine of a scan
to the seed comes out too large (measured on the demo: zooms 1.055 / 1.045 / 1.027, ~2.6 mm mean displacement
over the brain; with Chang's correction 1.018 / 0.993 / 0.985). Rescaling the template to the mean head size of
its 20 subjects (the earlier remedy) moved it by the sampling error of that mean (the demo's 20 subjects: 0.965).

What
----
The anchor is the atlas seed (brain = 1, striata, thalamus, brain stem, ventricles and the extracerebral shell at
the seed's binding) projected at the identity pose through the study's camera (:mod:`datxai.simulate.camera`:
collimator blur growing with distance, attenuation by the seed's head outline), written as an NM DICOM and read
and reconstructed by the study's own reader and FBP (:mod:`datxai.recon`): a scan whose pose is MNI by
construction. The template is then built from it (the first registrations go to the anchor on the grid) and
finally placed onto it: the anchor's 12-parameter affine to the built template (the study's estimator and
settings) is estimated and the template resliced by its inverse, so that a scan of an MNI-posed head registers
to the identity.

The camera is the config's ``simulate.camera``, with the acquisition geometry (bins, bin size, views, heads,
rotation, start angle) taken from a template subject's reconstruction sidecar where one exists (``source:
synthetic`` or ``dicom``). What the anchor cannot know for real scans: collimator blur and radius of rotation not
in the config, scatter, and anatomy beyond MNI152's; the placement corrects the frame (12 parameters), not the
shape.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from .atlas import atlas_on_grid
from .geometry import mean_displacement_mm
from .grid import Grid
from .recon.dicom import read_projections
from .recon.study import reconstruct_projections
from .register.affine import estimate_affine, resample_affine, reslice_to_grid, smooth_mm
from .register.template import seed_head, seed_template, symmetrise
from .simulate.camera import Camera, project
from .simulate.dicom import fake_identity, write_nm
from .simulate.phantom import phantom_grid

log = logging.getLogger(__name__)

# geometry keys of a reconstruction sidecar (recon/<subject>_spect.json) that describe the camera
_SIDECAR_TO_CAMERA = {"n_bins": "n_bins", "bin_mm": "bin_mm", "n_frames": "n_views", "n_heads": "n_heads",
                      "direction": "rotation"}
ANCHOR_COUNTS = 1e8  # total counts of the anchor's projections (noise-free; only rounding to integers)


def anchor_camera(camera_cfg: dict, sidecar: dict | None = None) -> Camera:
    """The camera of the anchor: ``simulate.camera`` with the acquisition geometry of ``sidecar`` where given.

    ``sidecar`` is a reconstruction sidecar (:func:`datxai.recon.study.reconstruct_file`'s summary: ``n_bins``,
    ``bin_mm``, ``n_frames``, ``n_heads``, ``direction``, ``start_angles_deg``); blur, radius and attenuation
    always come from the config (a projection header does not carry them reliably).
    """
    cam = dict(camera_cfg)
    if sidecar:
        for src, dst in _SIDECAR_TO_CAMERA.items():
            if sidecar.get(src) is not None:
                cam[dst] = sidecar[src]
        starts = sidecar.get("start_angles_deg")
        if starts:
            cam["start_angle_deg"] = float(starts[0]) % 360.0
        cam["n_bins"], cam["n_views"], cam["n_heads"] = int(cam["n_bins"]), int(cam["n_views"]), int(cam["n_heads"])
        cam["bin_mm"] = float(cam["bin_mm"])
    return Camera.from_config(cam)


def chain_anchor(grid_cfg: dict, phantom_voxel_mm: float, camera: Camera, recon_params: dict,
                 total_counts: float = ANCHOR_COUNTS) -> tuple[np.ndarray, np.ndarray]:
    """The atlas seed at the MNI pose through the camera, the DICOM writer, the reader and the reconstruction.

    Parameters
    ----------
    grid_cfg : the config's ``grid`` (the head grid is centred like it).
    phantom_voxel_mm : voxel of the grid the seed is projected from (``simulate.phantom_voxel_mm``).
    camera : :func:`anchor_camera`.
    recon_params : the config's ``reconstruct`` section.

    Returns
    -------
    native volume and its affine, as :func:`datxai.recon.study.reconstruct_projections` returns them; the
    volume's pose is the identity (native mm = MNI mm).
    """
    fine = phantom_grid(grid_cfg, phantom_voxel_mm)
    atlas = atlas_on_grid(fine)
    activity = seed_template(atlas, fwhm_mm=0.0)  # unsmoothed: the camera blurs
    volume, affine = through_chain(activity, seed_head(atlas), fine, camera, recon_params, total_counts=total_counts)
    log.info("anchor: the atlas seed on a %s grid of %.1f mm through %d views of %d bins of %.2f mm, reconstructed "
             "to %s", fine.shape, fine.voxel_mm, camera.n_views, camera.n_bins, camera.bin_mm, volume.shape)
    return volume, affine


def through_chain(activity: np.ndarray, head: np.ndarray, grid: Grid, camera: Camera, recon_params: dict,
                  pose: np.ndarray | None = None, total_counts: float = ANCHOR_COUNTS) -> tuple[np.ndarray, np.ndarray]:
    """An MNI-space object at ``pose`` through the study's chain, noise-free: projection (blur, attenuation by
    ``head``), one NM DICOM in a temporary folder, the study's reader and reconstruction. Returns the native
    volume and its affine."""
    expected = project(activity, grid, camera, pose=pose, head=head)
    counts = np.rint(expected * (total_counts / float(expected.sum())))
    with tempfile.TemporaryDirectory(prefix="datxai-anchor-") as tmp:
        path = Path(tmp) / "anchor.dcm"
        write_nm(path, counts, camera, subject="anchor", identity=fake_identity(0, "anchor", 70, "F"), seed=0,
                 age=70, sex="F", dose_mbq=185.0)
        proj = read_projections(path, energy_window=recon_params.get("energy_window", "auto"))
        return reconstruct_projections(proj, recon_params)


def anchor_on_grid(volume: np.ndarray, affine: np.ndarray, grid: Grid, seed: np.ndarray,
                   reference_mask: np.ndarray) -> np.ndarray:
    """The anchor resampled onto the MNI analysis grid (its pose is the identity), symmetrised, in the seed's
    units (its mean over ``reference_mask`` equals the seed's there). float32, ``grid.shape``."""
    out = symmetrise(reslice_to_grid(volume, affine, np.eye(4), grid))
    ref = np.asarray(reference_mask, bool)
    level = float(out[ref].mean())
    if not level > 0:
        raise ValueError("anchor: no positive signal in the reference region after reconstruction")
    return (out * np.float32(float(np.asarray(seed)[ref].mean()) / level)).astype(np.float32)


def _describe(matrix: np.ndarray, points_mm: np.ndarray) -> dict:
    m = np.asarray(matrix, float)
    return {"matrix": m.tolist(),
            "zooms": [float(z) for z in np.linalg.svd(m[:3, :3], compute_uv=False)],
            "size": float(np.cbrt(np.linalg.det(m[:3, :3]))),
            "mean_displacement_mm": mean_displacement_mm(m, np.eye(4), points_mm)}


def place_on_anchor(template: np.ndarray, grid: Grid, volume: np.ndarray, affine: np.ndarray,
                    brain_mask: np.ndarray, reference_mask: np.ndarray, fwhm_mm: float = 8.0,
                    **estimate_kwargs) -> tuple[np.ndarray, dict]:
    """Move ``template`` into the anchor's frame (= MNI): estimate the anchor's affine ``M`` to the template
    (template mm -> anchor mm = MNI mm) and reslice ``T'(x) = T(M^-1 x)``; symmetrise; keep the units.

    Returns the placed template and a record: ``placement`` (``M``: matrix, zooms, size, mean displacement from
    the identity over ``brain_mask``, mm) and the fit's ``cost``, ``correlation`` and ``flags``. A diverged fit
    raises (the template would be moved by nonsense).
    """
    template = np.asarray(template, np.float32)
    res = estimate_affine(smooth_mm(volume, affine, fwhm_mm), affine, smooth_mm(template, grid.affine, fwhm_mm),
                          grid.affine, **estimate_kwargs)
    if res.diverged:
        raise ValueError(f"anchor: its registration to the built template diverged ({', '.join(res.flags)})")
    ref = np.asarray(reference_mask, bool)
    level = float(template[ref].mean())
    placed = symmetrise(resample_affine(template, grid.affine, np.linalg.inv(res.matrix), grid.shape, grid.affine))
    placed *= np.float32(level / float(placed[ref].mean()))
    points = grid.coords_mm()[:, np.asarray(brain_mask, bool)].T
    record = {"placement": _describe(res.matrix, points), "cost": float(res.cost),
              "correlation": float(res.correlation), "flags": list(res.flags)}
    log.info("template placed on the anchor: its affine had zooms %s (size %.4f), %.2f mm mean displacement "
             "over the brain", np.round(record["placement"]["zooms"], 4), record["placement"]["size"],
             record["placement"]["mean_displacement_mm"])
    return placed.astype(np.float32), record


def chain_bias(grid: Grid, volume: np.ndarray, affine: np.ndarray, seed: np.ndarray, brain_mask: np.ndarray,
               fwhm_mm: float = 8.0, **estimate_kwargs) -> dict:
    """What the imaging chain does to the affine fit: the anchor (pose = identity) registered to the atlas seed.

    Its departure from the identity (zooms, mean displacement over the brain) is the error every scan's fit to
    the seed would carry; recorded beside the placement so a reader sees what the anchor corrects.
    """
    res = estimate_affine(smooth_mm(volume, affine, fwhm_mm), affine, smooth_mm(seed, grid.affine, fwhm_mm),
                          grid.affine, **estimate_kwargs)
    points = grid.coords_mm()[:, np.asarray(brain_mask, bool)].T
    return {**_describe(res.matrix, points), "flags": list(res.flags)}
