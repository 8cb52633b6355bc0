"""Rule find_clusters: heat above its percentile outside the striatum box -> labelled clusters (one setting)."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

from datxai.atlas import load_bundle  # noqa: E402
from datxai.grid import Grid  # noqa: E402
from datxai.group.run import cluster_region, run_find_clusters  # noqa: E402

logger = setup_logging(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
grid = Grid.from_config(sm.params.grid)
run_find_clusters(sm.input.heat, load_bundle(sm.input.atlas, grid=grid), grid, sm.params.box_mm, sm.output.clusters,
                  sm.output.table, percentile=sm.params.percentile, connectivity=sm.params.connectivity,
                  min_cluster_ml=sm.params.min_cluster_ml, region=cluster_region(sm.wildcards.setting),
                  sign=sm.params.heat_sign)
