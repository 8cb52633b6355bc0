"""Rule adapter: bring the packaged atlases onto the phantom grid once per run."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

from datxai.simulate import phantom  # noqa: E402

sm = snakemake  # noqa: F821
logger = setup_logging(sm)
grid = phantom.phantom_grid(sm.params.grid, sm.params.simulate["phantom_voxel_mm"])
anatomy = phantom.build_anatomy(grid, phantom.required_regions(sm.params.simulate))
anatomy.save(sm.output[0])
logger.info("phantom anatomy written: %s", grid)
