"""Rule adapter: write the atlas bundle for the configured grid."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

from datxai.atlas import AtlasOnGrid, save_bundle  # noqa: E402
from datxai.grid import Grid  # noqa: E402

logger = setup_logging(snakemake)  # noqa: F821
grid = Grid.from_config(snakemake.params.grid)  # noqa: F821
logger.info("resampling the Harvard-Oxford atlas and MNI152 maps onto %s", grid)
atlas = AtlasOnGrid(grid)
save_bundle(atlas, snakemake.output[0])  # noqa: F821
logger.info("striatum %.1f ml, reference region %.1f ml",
            atlas.striatum_mask.sum() * grid.voxel_ml, atlas.reference_mask.sum() * grid.voxel_ml)
