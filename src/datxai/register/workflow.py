"""The per-subject nipype workflow: smooth (source, template) -> estimate affine -> reslice.

::

    inputnode(source, template)
      |-> smooth_source ---\\
      |-> smooth_template --> estimate_affine --> outputnode.affine_json
      \\-------------------------------\\-> reslice (unsmoothed source) --> outputnode.normalized

:func:`run_normalize` runs it in a temporary ``base_dir`` and copies the two
results atomically to their destinations (whole or not at all).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

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
