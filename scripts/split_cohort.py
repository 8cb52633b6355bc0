"""Rule adapter: stratified, age-balanced train/val/test split and its balance table."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

from datxai.split import run  # noqa: E402

logger = setup_logging(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
info = run(sm.input.participants, sm.output.split, sm.output.balance, dict(sm.params.sizes),
           int(sm.params.n_draws), int(sm.params.seed))
logger.info("kept draw %d (age imbalance %.3f years); allocation %s", info["draw"], info["age_imbalance"],
            info["allocation"])
