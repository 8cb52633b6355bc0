"""Spatial normalisation: SPM12-style 12-parameter affine registration to an FP-CIT template.

* :mod:`.affine` — the estimator (``estimate_affine``, ``spm_matrix``, ``reslice_to_grid``).
* :mod:`.template` — the atlas-derived seed and the iterative cohort template.
* :mod:`.interfaces`, :mod:`.workflow` — nipype interfaces and the per-subject workflow.
* :mod:`.qc` — montage, registration table, error against a known pose.

Convention: ``source_mm = M @ template_mm`` (template/MNI mm -> native mm),
as :mod:`datxai.geometry`'s pose.
"""

from .affine import (  # noqa: F401
    PARAM_NAMES,
    AffineResult,
    estimate_affine,
    register,
    reslice_to_grid,
    spm_imatrix,
    spm_matrix,
)
from .template import build_template, seed_template, select_template_subjects, symmetrise  # noqa: F401
