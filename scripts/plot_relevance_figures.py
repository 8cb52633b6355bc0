"""Rule plot_relevance_figures: Figs 1-3 (mean maps, heat through the striatum, clusters over the MNI T1)."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

from datxai.atlas import load_bundle  # noqa: E402
from datxai.grid import Grid  # noqa: E402
from datxai.group.run import run_figures  # noqa: E402

logger = setup_logging(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
grid = Grid.from_config(sm.params.grid)
settings, cluster_settings = list(sm.params.settings), list(sm.params.cluster_settings)
group = {s: {"heat": h, "mean_tp": tp, "mean_tn": tn, "json": js}
         for s, h, tp, tn, js in zip(settings, sm.input.heat, sm.input.mean_tp, sm.input.mean_tn, sm.input.counts)}
clusters = dict(zip(cluster_settings, sm.input.clusters))
run_figures(group, clusters, load_bundle(sm.input.atlas, grid=grid), grid, sm.params.box_mm, sm.params.percentile,
            sm.output.fig1, sm.output.fig2, sm.output.fig3, sign=sm.params.heat_sign)
