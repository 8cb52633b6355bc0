"""Batches of the per-subject stages whose membership does not shift as a cohort grows.

The per-subject stages (simulate, reconstruct, normalise, scale) run as batch
jobs of about ``execution.subjects_per_job`` subjects: one process per batch,
since a job's start-up costs more than one subject's work. Snakemake reruns a
batch job when its set of subjects changes, so the membership must not depend
on where a subject falls in the sorted list: consecutive slices would move every
later subject by one when a subject is added in the middle, and rerun every
later batch.

Here a subject's batch is fixed by its identifier alone: ``sha256(id) mod n``,
with ``n`` the power of two nearest (in log2) to ``len(subjects) /
subjects_per_job``. Adding or removing a subject changes one batch; all
batches are redrawn only when the cohort size crosses ``subjects_per_job *
2 ** (k + 1/2)`` (a factor of ~1.4 between redraws). Batch sizes then average
``subjects_per_job / sqrt(2)`` to ``subjects_per_job * sqrt(2)`` and scatter
around that (a hash, not a slice); an empty batch has no job. Results do not
depend on the batches: every subject is processed on its own.
"""

from __future__ import annotations

import hashlib
import math

from .checks import check_range


def n_batches(n_subjects: int, subjects_per_job: int) -> int:
    """The power of two nearest (in log2) to ``n_subjects / subjects_per_job``; 1 for a small cohort."""
    check_range("execution.subjects_per_job", subjects_per_job, 1)
    ratio = n_subjects / subjects_per_job
    return 1 if ratio <= 1 else 2 ** int(round(math.log2(ratio)))


def batch_of(subject: str, n: int) -> int:
    """The batch (0-based, < ``n``) of one subject: its identifier's sha256 modulo ``n``."""
    return int.from_bytes(hashlib.sha256(str(subject).encode()).digest()[:8], "big") % n


def subject_batches(subjects, subjects_per_job: int) -> dict[int, list[str]]:
    """``{batch index: its subjects in the given order}`` for the non-empty batches, by index."""
    subjects = list(subjects)
    if len(set(subjects)) != len(subjects):
        raise ValueError("subject identifiers must be unique")
    n = n_batches(len(subjects), subjects_per_job)
    out: dict[int, list[str]] = {}
    for s in subjects:
        out.setdefault(batch_of(s, n), []).append(s)
    return dict(sorted(out.items()))
