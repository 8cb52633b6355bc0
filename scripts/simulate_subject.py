"""Rule adapter: simulate a batch of subjects (phantom, pose, camera, noise) and export each as DICOM NM."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import run_batch, setup_logging  # noqa: E402

from datxai.simulate.cohort import write_subject  # noqa: E402

sm = snakemake  # noqa: F821
logger = setup_logging(sm)
run_batch(sm, logger, lambda i, subject: write_subject(
    subject, sm.input.truth, sm.input.anatomy, sm.params.simulate, sm.params.grid, sm.params.seed,
    sm.output.dicom[i], sm.output.truth[i], sm.output.activity[i]))
