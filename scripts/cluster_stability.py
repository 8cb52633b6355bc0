"""Rule cluster_stability: the relevance clusters of one setting over its training repeats (Dice, stability)."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

from datxai.atlas import load_bundle  # noqa: E402
from datxai.grid import Grid  # noqa: E402
from datxai.group.run import run_cluster_stability  # noqa: E402

logger = setup_logging(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
grid = Grid.from_config(sm.params.grid)
run_cluster_stability(list(sm.input.clusters), list(sm.input.heats), load_bundle(sm.input.atlas, grid=grid), grid,
                      sm.params.box_mm, sm.wildcards.setting, sm.output.dice, sm.output.stability, sm.output.clusters,
                      sm.output.table, percentile=sm.params.percentile, connectivity=sm.params.connectivity,
                      min_cluster_ml=sm.params.min_cluster_ml, sign=sm.params.heat_sign)
