"""Spatial normalisation: SPM12-style 12-parameter affine registration to an FP-CIT template.

* :mod:`.affine` — the estimator (``estimate_affine``, ``spm_matrix``, ``reslice_to_grid``).
* :mod:`.template` — the atlas-derived seed and the iterative cohort template.
* :mod:`.interfaces`, :mod:`.workflow` — nipype interfaces and the per-subject workflow.
* :mod:`.qc` — montage, registration table, error against a known pose.

Convention: ``source_mm = M @ template_mm`` (template/MNI mm -> native mm),
as :mod:`datxai.geometry`'s pose.
"""

# Lazy (PEP 562): `datxai.register.selection`, which the workflow imports while it builds
# the DAG, must not pull in scipy and the estimator.
_EXPORTS = {
    "affine": ("PARAM_NAMES", "AffineResult", "estimate_affine", "register", "reslice_to_grid", "spm_imatrix",
               "spm_matrix"),
    "template": ("build_template", "seed_template", "symmetrise"),
    "selection": ("select_template_subjects",),
}
__all__ = [name for names in _EXPORTS.values() for name in names]


def __getattr__(name):
    import importlib

    for module, names in _EXPORTS.items():
        if name in names:
            return getattr(importlib.import_module(f"{__name__}.{module}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
