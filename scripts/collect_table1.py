"""Rule collect_table1: Table 1 (counts, metrics, Wilson CIs) over the settings, and its bar figure."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

logger = setup_logging(snakemake)  # noqa: F821

from datxai.model.evaluate import collect_table1  # noqa: E402

sm = snakemake  # noqa: F821
collect_table1(dict(zip(sm.params.settings, sm.input.predictions)), sm.output.table, sm.output.figure,
               confidence=sm.params.confidence)
