"""Rule voxelwise_comparator: two-sample t of the scaled images per voxel (one subset), max-T FWE, clusters."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

from datxai.atlas import load_bundle  # noqa: E402
from datxai.grid import Grid  # noqa: E402
from datxai.group.run import run_voxelwise  # noqa: E402

logger = setup_logging(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
grid = Grid.from_config(sm.params.grid)
run_voxelwise(sm.input.stack, sm.input.stack_sidecar, sm.input.participants, sm.input.split, sm.wildcards.subset,
              load_bundle(sm.input.atlas, grid=grid), grid, sm.params.box_mm, sm.output.tmap, sm.output.clusters,
              sm.output.table, sm.output.summary, n_perm=sm.params.voxelwise["n_perm"],
              alpha=sm.params.voxelwise["alpha"], seed=sm.params.seed, connectivity=sm.params.connectivity,
              min_cluster_ml=sm.params.min_cluster_ml, n_jobs=sm.threads)
