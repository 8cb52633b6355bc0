"""Rule adapter: every subject's scaled image into one memory-mapped stack (dataset/scaled_stack.npy + .json)."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

from datxai.dataset import write_image_stack  # noqa: E402
from datxai.grid import Grid  # noqa: E402

logger = setup_logging(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
grid = Grid.from_config(sm.params.grid)
write_image_stack(sm.input.images, sm.params.subjects, grid, sm.output.npy, sm.output.sidecar)
logger.info("stacked %d images of shape %s into %s", len(sm.params.subjects), grid.shape, sm.output.npy)
