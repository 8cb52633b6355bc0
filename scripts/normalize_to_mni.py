"""Rule adapter: a batch of subjects' native SPECT -> MNI grid through the nipype workflow (one run per subject)."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import run_batch, setup_logging  # noqa: E402

from datxai.grid import Grid  # noqa: E402
from datxai.register.workflow import normalize_options, run_normalize  # noqa: E402

sm = snakemake  # noqa: F821
logger = setup_logging(sm)
grid = Grid.from_config(sm.params.grid)
options = normalize_options(sm.params.normalize)


def normalize(i, subject):
    info = run_normalize(sm.input.image[i], sm.input.template, sm.output.image[i], sm.output.affine[i],
                         grid, subject=subject, **options)
    logger.info("%s: cost %.4g, %d iterations, flags: %s", subject, info["cost"], info["iterations"],
                ", ".join(info["flags"]) or "none")


run_batch(sm, logger, normalize)
