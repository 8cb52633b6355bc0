"""Rule audit_relevance: region perturbation (AOPC) and randomisation sanity checks of one setting's relevance."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

logger = setup_logging(snakemake)  # noqa: F821

from datxai.devices import resolve_device  # noqa: E402
from datxai.explain.audit import run_faithfulness  # noqa: E402
from datxai.numerics import pin_cpu_numerics  # noqa: E402

sm = snakemake  # noqa: F821
pin_cpu_numerics(**sm.params.numerics)  # before any torch computation
run_faithfulness(sm.input.model, sm.input.images, sm.input.table, sm.input.train, sm.output.curves, sm.output.aopc,
                 sm.output.randomisation, sm.output.figure, sm.wildcards.setting, sm.params.explain, sm.params.checks,
                 sm.params.seed, device=resolve_device(sm.params.device, "explain.device"))
