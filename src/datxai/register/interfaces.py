"""nipype interfaces of the normalisation: smooth, estimate the affine, reslice to the MNI grid.

Each interface reads and writes files (NIfTI, JSON) in its node's working
directory, so nipype can cache and rerun them; the science is in
:mod:`datxai.register.affine`.
"""

from __future__ import annotations

import json
import logging
import os

import numpy as np
from nipype.interfaces.base import BaseInterface, BaseInterfaceInputSpec, File, TraitedSpec, traits

from ..grid import Grid
from ..io import load_nifti, save_nifti, write_json
from . import affine as _affine

log = logging.getLogger(__name__)


def _out(name: str) -> str:
    return os.path.abspath(name)


# --------------------------------------------------------------------------- smooth
class SmoothInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="3-D NIfTI image")
    fwhm_mm = traits.Float(8.0, usedefault=True, desc="isotropic Gaussian FWHM in mm (0 = copy)")
    out_name = traits.Str("smoothed.nii.gz", usedefault=True, desc="output file name")


class SmoothOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="smoothed image, float32, same affine")


class Smooth(BaseInterface):
    """Gaussian smoothing with a FWHM in mm (voxel sizes from the affine)."""

    input_spec = SmoothInputSpec
    output_spec = SmoothOutputSpec

    def _run_interface(self, runtime):
        data, aff = load_nifti(self.inputs.in_file)
        save_nifti(_affine.smooth_mm(data, aff, self.inputs.fwhm_mm), aff, _out(self.inputs.out_name))
        return runtime

    def _list_outputs(self):
        return {"out_file": _out(self.inputs.out_name)}


# --------------------------------------------------------------------------- estimate
class EstimateAffineInputSpec(BaseInterfaceInputSpec):
    source_file = File(exists=True, mandatory=True, desc="smoothed native image")
    template_file = File(exists=True, mandatory=True, desc="smoothed template in MNI space")
    sampling_mm = traits.List(traits.Float, [8.0, 4.0], usedefault=True, desc="coarse-to-fine sampling distances (mm)")
    regularization = traits.Float(0.01, usedefault=True, desc="penalty on anisotropic zooms and shears")
    max_iterations = traits.Int(64, usedefault=True, desc="Gauss-Newton iterations per level")
    on_divergence = traits.Enum("fallback", "error", usedefault=True,
                                desc="fallback: use the centre-of-mass start for reslicing (flagged); error: fail")
    subject = traits.Str("", usedefault=True, desc="subject id for messages")


class EstimateAffineOutputSpec(TraitedSpec):
    affine_json = File(exists=True, desc="JSON: matrix (template mm -> source mm), parameters, cost, flags")
    matrix = traits.List(traits.List(traits.Float), desc="the 4x4 matrix used for reslicing")
    diverged = traits.Bool(desc="the estimate failed a check")


class EstimateAffine(BaseInterface):
    """SPM12-style 12-parameter affine + intensity scale by least squares (see :mod:`datxai.register.affine`)."""

    input_spec = EstimateAffineInputSpec
    output_spec = EstimateAffineOutputSpec

    def _run_interface(self, runtime):
        src, src_aff = load_nifti(self.inputs.source_file)
        tpl, tpl_aff = load_nifti(self.inputs.template_file)
        res = _affine.estimate_affine(src, src_aff, tpl, tpl_aff, sampling_mm=list(self.inputs.sampling_mm),
                                      regularization=self.inputs.regularization, max_iterations=self.inputs.max_iterations)
        who = self.inputs.subject or os.path.basename(self.inputs.source_file)
        out = _affine.affine_record(res, self.inputs.subject, self.inputs.on_divergence, who=who)
        write_json(out, _out("affine.json"))
        self._matrix = out["matrix"]
        self._diverged = bool(res.diverged)
        return runtime

    def _list_outputs(self):
        matrix, diverged = getattr(self, "_matrix", None), getattr(self, "_diverged", None)
        if matrix is None and os.path.exists(_out("affine.json")):
            with open(_out("affine.json")) as fh:
                d = json.load(fh)
            matrix, diverged = d["matrix"], d["diverged"]
        return {"affine_json": _out("affine.json"), "matrix": matrix, "diverged": diverged}


# --------------------------------------------------------------------------- reslice
class ResliceToGridInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="native image (unsmoothed)")
    affine_json = File(exists=True, mandatory=True, desc="JSON with 'matrix' (template mm -> source mm)")
    grid_shape = traits.List(traits.Int, minlen=3, maxlen=3, mandatory=True, desc="analysis grid shape")
    voxel_mm = traits.Float(mandatory=True, desc="analysis grid voxel size (mm)")
    center_mm = traits.List(traits.Float, [0.0, -18.0, 11.0], usedefault=True, minlen=3, maxlen=3, desc="grid centre (MNI mm)")
    order = traits.Range(0, 5, 1, usedefault=True, desc="spline order (1 = trilinear)")
    out_name = traits.Str("space-MNI.nii.gz", usedefault=True)


class ResliceToGridOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="float32 image on the analysis grid, with the grid affine")


class ResliceToGrid(BaseInterface):
    """Sample the native image at ``M @ grid_mm`` for every voxel of the MNI analysis grid."""

    input_spec = ResliceToGridInputSpec
    output_spec = ResliceToGridOutputSpec

    def _run_interface(self, runtime):
        data, aff = load_nifti(self.inputs.in_file)
        with open(self.inputs.affine_json) as fh:
            matrix = np.asarray(json.load(fh)["matrix"], dtype=float)
        grid = Grid(tuple(self.inputs.grid_shape), float(self.inputs.voxel_mm), tuple(self.inputs.center_mm))
        out = _affine.reslice_to_grid(data, aff, matrix, grid, order=self.inputs.order)
        save_nifti(out, grid.affine, _out(self.inputs.out_name), header_extra={"mni": True})
        return runtime

    def _list_outputs(self):
        return {"out_file": _out(self.inputs.out_name)}
