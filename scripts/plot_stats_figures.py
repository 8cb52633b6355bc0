"""Rule adapter: Fig. 4 (focus-cluster uptake histograms and ROC) and Fig. 5 (uptake vs putamen SBR)."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

from datxai.stats.analysis import load_merged  # noqa: E402
from datxai.stats.figures import plot_focus_uptake, plot_uptake_vs_sbr  # noqa: E402

logger = setup_logging(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
table = load_merged(sm.input.uptake, sm.input.participants, sm.input.split, sm.input.sbr)
with open(sm.input.focus) as fh:
    focus = json.load(fh)
plot_focus_uptake(table, focus, sm.output.fig4)
plot_uptake_vs_sbr(table, focus, sm.output.fig5)
