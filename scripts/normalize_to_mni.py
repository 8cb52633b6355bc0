"""Rule adapter: one subject's native SPECT -> MNI grid through the nipype workflow."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

from datxai.grid import Grid  # noqa: E402
from datxai.register.workflow import normalize_options, run_normalize  # noqa: E402

sm = snakemake  # noqa: F821
logger = setup_logging(sm)
info = run_normalize(sm.input.image, sm.input.template, sm.output.image, sm.output.affine,
                     Grid.from_config(sm.params.grid), subject=sm.wildcards.subject,
                     **normalize_options(sm.params.normalize))
logger.info("%s: cost %.4g, %d iterations, flags: %s", sm.wildcards.subject, info["cost"], info["iterations"],
            ", ".join(info["flags"]) or "none")
