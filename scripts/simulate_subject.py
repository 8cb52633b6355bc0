"""Rule adapter: simulate one subject (phantom, pose, camera, noise) and export it as DICOM NM."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

from datxai.simulate.cohort import write_subject  # noqa: E402

sm = snakemake  # noqa: F821
logger = setup_logging(sm)
write_subject(sm.wildcards.subject, sm.input.truth, sm.input.anatomy, sm.params.simulate, sm.params.grid,
              sm.params.seed, sm.output.dicom, sm.output.truth, sm.output.activity)
