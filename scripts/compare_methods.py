"""Rule compare_methods: relevance clusters and voxelwise clusters side by side, distances, comparator figure."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

from datxai.atlas import load_bundle  # noqa: E402
from datxai.grid import Grid  # noqa: E402
from datxai.group.run import run_compare_methods  # noqa: E402

logger = setup_logging(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
grid = Grid.from_config(sm.params.grid)
lrp = {s: (n, t) for s, n, t in zip(sm.params.settings, sm.input.lrp_niftis, sm.input.lrp_tables)}
vox = {s: v for s, *v in zip(sm.params.subsets, sm.input.vox_niftis, sm.input.vox_tables, sm.input.vox_tmaps,
                             sm.input.vox_summaries)}
run_compare_methods(lrp, vox, load_bundle(sm.input.atlas, grid=grid), grid, sm.params.box_mm, sm.output.long,
                    sm.output.wide, sm.output.figure)
