"""Reconstruction of DICOM NM projections: reader, filtered back-projection, Chang correction.

Entry points: :func:`read_projections` (DICOM -> :class:`Projections`),
:func:`fbp` / :func:`reconstruct_frames` (numpy, batched over slices and subjects),
:func:`chang_correct`, :func:`reconstruct_file` (DICOM -> native NIfTI); reconstructed NM volumes
(RECON TOMO): :func:`read_nm_volume`, :func:`convert_volume_file`.
"""

from .attenuation import body_mask, chang_correct, chang_factors, exit_path_lengths
from .dicom import Projections, read_projections
from .fbp import FILTERS, fbp, fourier_filter, frequency_scaling, reconstruct_frames
from .study import DEFAULTS, reconstruct_file, reconstruct_projections, resolve_params
from .volume import convert_volume_file, read_nm_volume

__all__ = [
    "FILTERS", "DEFAULTS", "Projections", "body_mask", "chang_correct", "chang_factors", "exit_path_lengths",
    "fbp", "fourier_filter", "frequency_scaling", "read_projections", "reconstruct_file", "reconstruct_frames",
    "reconstruct_projections", "resolve_params", "read_nm_volume", "convert_volume_file",
]
