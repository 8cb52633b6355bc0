"""The synthetic DAT-SPECT cohort: MNI phantom, subject variability and disease, camera, DICOM export.

Modules: :mod:`.phantom` (anatomy and activity), :mod:`.cohort` (participants,
subject parameters, truth), :mod:`.camera` (forward projector, see
:mod:`datxai.geometry`), :mod:`.dicom` (NM export), :mod:`.cli` (``datxai simulate``).
"""
