"""Rule companion_analyses (S2): ipsilateral putamen relevance, its sign as a classifier, inconsistent maps."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

from datxai.atlas import load_bundle  # noqa: E402
from datxai.grid import Grid  # noqa: E402
from datxai.group.run import run_companion  # noqa: E402

logger = setup_logging(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
grid = Grid.from_config(sm.params.grid)
run_companion(sm.input.maps, sm.input.mean_tn, sm.input.mean_tp, load_bundle(sm.input.atlas, grid=grid), grid,
              sm.output.table, sm.output.summary, sm.output.histogram, sm.output.panel,
              images_npy=sm.input.images, table_tsv=sm.input.table, setting=sm.params.setting, box_mm=sm.params.box_mm,
              margin_mm=sm.params.margin_mm, hottest_ml=sm.params.hottest_ml, select_by=sm.params.putamen_select)
