"""Rule case_uncertainty: per test case the spread of P(reduced) over the training repeats; uncertain cases flagged."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

logger = setup_logging(snakemake)  # noqa: F821

from datxai.model.uncertainty import collect_uncertainty  # noqa: E402

sm = snakemake  # noqa: F821
n = int(sm.params.repeats)
paths = list(sm.input.predictions)  # setting-major, repeat 0 first (common.smk: repeat_predictions)
collect_uncertainty({s: paths[i * n:(i + 1) * n] for i, s in enumerate(sm.params.settings)},
                    sm.output.cases, sm.output.summary, measure=sm.params.measure,
                    threshold=float(sm.params.threshold), confidence=sm.params.confidence)
