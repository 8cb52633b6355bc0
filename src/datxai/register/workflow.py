"""The normalisation of native SPECT to the MNI grid: per subject through nipype, or a batch at once in torch.

The per-subject nipype workflow: smooth (source, template) -> estimate affine -> reslice.

::

    inputnode(source, template)
      |-> smooth_source ---\\
      |-> smooth_template --> estimate_affine --> outputnode.affine_json
      \\-------------------------------\\-> reslice (unsmoothed source) --> outputnode.normalized

:func:`run_normalize` runs it in a temporary ``base_dir`` and copies the two
results atomically to their destinations (whole or not at all).

:func:`run_normalize_batch` (config ``normalize.engine: torch``) does the same
steps for a whole batch job's subjects, with the affine estimation batched on
``normalize.device`` (:mod:`datxai.register.batched`; a GPU when present). Its
JSON and image for a subject are those of the nipype workflow up to float32
rounding of the fit: within 0.01 mm (tests/test_register_workflow.py and
tests/test_workflow.py).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..checks import check_choice
from ..grid import Grid
from ..io import atomic_path, load_nifti

log = logging.getLogger(__name__)


def normalize_options(normalize_cfg: dict) -> dict:
    """Keyword arguments of :func:`build_normalize_workflow` from the config's ``normalize`` section."""
    return {
        "fwhm_mm": float(normalize_cfg.get("smooth_fwhm_mm", 8.0)),
        "sampling_mm": [float(d) for d in normalize_cfg.get("sampling_mm", [8.0, 4.0])],
        "regularization": float(normalize_cfg.get("regularization", 0.01)),
        "max_iterations": int(normalize_cfg.get("max_iterations", 64)),
        "order": int(normalize_cfg.get("interpolation_order", 1)),
        "on_divergence": str(normalize_cfg.get("on_divergence", "fallback")),
    }


def normalize_engine(normalize_cfg: dict) -> tuple[str, str]:
    """``(engine, device)`` from the config's ``normalize`` section: ``nipype`` (per subject) or ``torch`` (batched)."""
    engine = str(normalize_cfg.get("engine", "nipype"))
    check_choice("normalize.engine", engine, ("nipype", "torch"))
    return engine, str(normalize_cfg.get("device", "auto"))


def build_normalize_workflow(
    grid: Grid,
    fwhm_mm: float = 8.0,
    sampling_mm=(8.0, 4.0),
    regularization: float = 0.01,
    max_iterations: int = 64,
    order: int = 1,
    on_divergence: str = "fallback",
    subject: str = "",
    name: str = "normalize_to_mni",
    base_dir: str | None = None,
):
    """A nipype ``Workflow``; set ``inputnode.source`` / ``inputnode.template`` (NIfTI paths) and run it.

    Outputs: ``outputnode.normalized`` (float32 NIfTI on ``grid``) and
    ``outputnode.affine_json``.
    """
    os.environ.setdefault("NIPYPE_NO_ET", "1")  # no network check
    from nipype.interfaces.utility import IdentityInterface
    from nipype.pipeline import engine as pe

    from .interfaces import EstimateAffine, ResliceToGrid, Smooth

    wf = pe.Workflow(name=name, base_dir=base_dir)
    inputnode = pe.Node(IdentityInterface(fields=["source", "template"]), name="inputnode")
    # the smoothed images live only in the temporary base_dir: uncompressed, no gzip per subject
    smooth_src = pe.Node(Smooth(fwhm_mm=fwhm_mm, out_name="source_smoothed.nii"), name="smooth_source")
    smooth_tpl = pe.Node(Smooth(fwhm_mm=fwhm_mm, out_name="template_smoothed.nii"), name="smooth_template")
    estimate = pe.Node(EstimateAffine(sampling_mm=list(sampling_mm), regularization=regularization,
                                      max_iterations=max_iterations, on_divergence=on_divergence, subject=subject),
                       name="estimate_affine")
    reslice = pe.Node(ResliceToGrid(grid_shape=list(grid.shape), voxel_mm=grid.voxel_mm, center_mm=list(grid.center_mm),
                                    order=order), name="reslice")
    outputnode = pe.Node(IdentityInterface(fields=["normalized", "affine_json"]), name="outputnode")
    wf.connect([
        (inputnode, smooth_src, [("source", "in_file")]),
        (inputnode, smooth_tpl, [("template", "in_file")]),
        (smooth_src, estimate, [("out_file", "source_file")]),
        (smooth_tpl, estimate, [("out_file", "template_file")]),
        (inputnode, reslice, [("source", "in_file")]),
        (estimate, reslice, [("affine_json", "affine_json")]),
        (reslice, outputnode, [("out_file", "normalized")]),
        (estimate, outputnode, [("affine_json", "affine_json")]),
    ])
    return wf


def _copy_atomic(src, dst) -> Path:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    return Path(dst)


def run_normalize(source, template, out_image, out_json, grid: Grid, work_dir=None, **options) -> dict:
    """Run the workflow for one image; write ``out_image`` and ``out_json`` atomically.

    ``work_dir``: parent of the temporary nipype ``base_dir`` (default: the
    system temp folder); it is removed afterwards. ``options``: see
    :func:`build_normalize_workflow`. Returns the affine JSON as a dict.
    """
    import json

    from nipype import config as nipype_config

    source, template = Path(source).resolve(), Path(template).resolve()
    for p, what in ((source, "source image"), (template, "template")):
        if not p.is_file():
            raise FileNotFoundError(f"{p}: {what} not found")
        load_nifti(p)  # refuse a bad image by name here; inside nipype the reason ends up in a node traceback
    with tempfile.TemporaryDirectory(prefix="datxai-normalize-", dir=work_dir) as tmp:
        # hash_method timestamp: base_dir is a fresh folder per call, so nipype's cache is never reused and
        # hashing the inputs' content (md5 of every file, per node) bought nothing.
        nipype_config.update_config({"execution": {"crashdump_dir": tmp, "crashfile_format": "txt",
                                                   "hash_method": "timestamp", "remove_unnecessary_outputs": False},
                                     "monitoring": {"enabled": False}})
        wf = build_normalize_workflow(grid, base_dir=tmp, **options)
        wf.inputs.inputnode.source = str(source)
        wf.inputs.inputnode.template = str(template)
        graph = wf.run(plugin="Linear")
        nodes = {n.name: n for n in graph.nodes()}
        normalized = nodes["reslice"].result.outputs.out_file
        affine_json = nodes["estimate_affine"].result.outputs.affine_json
        with open(affine_json) as fh:
            info = json.load(fh)
        _copy_atomic(affine_json, out_json)
        try:
            _copy_atomic(normalized, out_image)
        except BaseException:
            Path(out_json).unlink(missing_ok=True)  # whole or not at all
            raise
    return info


def run_normalize_batch(sources, template, out_images, out_jsons, grid: Grid, subjects, device: str = "auto",
                        fwhm_mm: float = 8.0, sampling_mm=(8.0, 4.0), regularization: float = 0.01,
                        max_iterations: int = 64, order: int = 1, on_divergence: str = "fallback") -> list[dict]:
    """Normalise a batch of subjects: smooth each, estimate all affines at once on ``device``, reslice, write.

    The same steps and outputs as :func:`run_normalize` per subject. Every source is
    read and checked before anything is estimated or written: bad files are named
    together in one :class:`~datxai.io.InputError`. A subject whose fit diverges with
    ``on_divergence="error"`` fails after the others are written, naming every such
    subject (the caller's job then fails and its outputs are discarded). Each subject's
    JSON and image are written atomically, the JSON removed again if its image fails.
    Returns the affine JSONs as dicts, in order.
    """
    from ..io import InputError, save_nifti, write_json
    from .affine import affine_record, reslice_to_grid, smooth_mm
    from .batched import estimate_affine_batch

    subjects = list(subjects)
    if not len(sources) == len(out_images) == len(out_jsons) == len(subjects):
        raise ValueError(f"{len(sources)} sources, {len(out_images)} output images, {len(out_jsons)} JSONs and "
                         f"{len(subjects)} subjects: one of each per subject")
    tpl, tpl_aff = load_nifti(Path(template))
    images, bad = [], []
    for subject, path in zip(subjects, sources):
        try:
            data, aff = load_nifti(Path(path))
        except (OSError, ValueError) as exc:
            bad.append(f"  {subject}: {exc}")  # load_nifti also refuses what is not one 3-D volume
            continue
        images.append((data, aff))
    if bad:
        raise InputError(f"{len(bad)} of {len(subjects)} source images cannot be used:\n" + "\n".join(bad))
    smoothed = [smooth_mm(data, aff, fwhm_mm) for data, aff in images]
    results = estimate_affine_batch(smoothed, [aff for _, aff in images], smooth_mm(tpl, tpl_aff, fwhm_mm), tpl_aff,
                                    sampling_mm=sampling_mm, regularization=regularization,
                                    max_iterations=max_iterations, device=device)
    infos, failed = [], []
    for subject, (data, aff), res, out_image, out_json in zip(subjects, images, results, out_images, out_jsons):
        try:
            info = affine_record(res, subject, on_divergence)
        except RuntimeError as exc:
            failed.append(str(exc))
            continue
        resliced = reslice_to_grid(data, aff, np.asarray(info["matrix"], dtype=float), grid, order=order)
        write_json(info, out_json)
        try:
            save_nifti(resliced, grid.affine, out_image, header_extra={"mni": True})
        except BaseException:
            Path(out_json).unlink(missing_ok=True)  # whole or not at all
            raise
        infos.append(info)
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(subjects)} registrations diverged (normalize.on_divergence is "
                           "'error'):\n" + "\n".join(f"  {m}" for m in failed))
    return infos
