"""Rule group_relevance: mean relevance of TP and TN test cases and heat = mean(TP) - mean(TN), one setting."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

from datxai.grid import Grid  # noqa: E402
from datxai.group.run import run_group_relevance  # noqa: E402

logger = setup_logging(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
run_group_relevance(sm.input.maps, Grid.from_config(sm.params.grid), sm.output.heat, sm.output.mean_tp,
                    sm.output.mean_tn, sm.output.counts, setting=sm.wildcards.setting)
