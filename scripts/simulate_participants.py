"""Rule adapter: draw the synthetic cohort; write participants.tsv and the truth table."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

from datxai.simulate.cohort import write_participants  # noqa: E402

sm = snakemake  # noqa: F821
logger = setup_logging(sm)
truth = write_participants(sm.params.simulate, sm.params.seed, sm.output.participants, sm.output.truth)
logger.info("%d subjects, %d labelled reduced", len(truth), int((truth["label"] == "reduced").sum()))
