"""Rule collect_repeats: Table 1 per training repeat and its spread (mean, SD, min, max) per setting."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

logger = setup_logging(snakemake)  # noqa: F821

from datxai.model.evaluate import collect_repeats  # noqa: E402

sm = snakemake  # noqa: F821
n = int(sm.params.repeats)
paths = list(sm.input.predictions)  # setting-major, repeat 0 first (common.smk: repeat_predictions)
collect_repeats({s: paths[i * n:(i + 1) * n] for i, s in enumerate(sm.params.settings)},
                sm.output.per_repeat, sm.output.summary, confidence=sm.params.confidence)
