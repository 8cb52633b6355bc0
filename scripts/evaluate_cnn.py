"""Rule evaluate_cnn: predictions of one setting's model on its test images."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

logger = setup_logging(snakemake)  # noqa: F821

from datxai.model.evaluate import run_evaluation  # noqa: E402
from datxai.numerics import pin_cpu_numerics  # noqa: E402

sm = snakemake  # noqa: F821
pin_cpu_numerics(**sm.params.numerics)  # before any torch computation
run_evaluation(sm.input.model, sm.input.images, sm.input.table, sm.output.predictions,
               device=sm.params.device, amp=sm.params.amp, batch_size=sm.params.batch_size)
