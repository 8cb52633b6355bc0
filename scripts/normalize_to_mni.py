"""Rule adapter: a batch of subjects' native SPECT -> MNI grid.

``normalize.engine: nipype``: the nipype workflow, one run per subject.
``normalize.engine: torch``: the whole batch at once, the affine estimation batched on ``normalize.device``.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import run_batch, setup_logging  # noqa: E402

from datxai.grid import Grid  # noqa: E402
from datxai.register.workflow import normalize_engine, normalize_options, run_normalize, run_normalize_batch  # noqa: E402

sm = snakemake  # noqa: F821
logger = setup_logging(sm)
grid = Grid.from_config(sm.params.grid)
options = normalize_options(sm.params.normalize)
engine, device = normalize_engine(sm.params.normalize)


def report(subject, info):
    logger.info("%s: cost %.4g, %d iterations, flags: %s", subject, info["cost"], info["iterations"],
                ", ".join(info["flags"]) or "none")


def normalize(i, subject):
    report(subject, run_normalize(sm.input.image[i], sm.input.template, sm.output.image[i], sm.output.affine[i],
                                  grid, subject=subject, **options))


if engine == "torch":
    start = time.perf_counter()
    subjects = list(sm.params.subjects)
    infos = run_normalize_batch(list(sm.input.image), sm.input.template, list(sm.output.image),
                                list(sm.output.affine), grid, subjects, device=device, **options)
    for subject, info in zip(subjects, infos):
        report(subject, info)
    logger.info("%d subjects in %.1f s (torch engine, device %s)", len(subjects), time.perf_counter() - start, device)
else:
    run_batch(sm, logger, normalize)
