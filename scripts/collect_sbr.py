"""Rule adapter: per-subject SBR files -> quant/sbr.tsv and the I vs C scatter figure."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

from datxai.io import write_tsv  # noqa: E402
from datxai.participants import load_participants  # noqa: E402
from datxai.preprocess.quality import collect_sbr, plot_sbr  # noqa: E402

logger = setup_logging(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
table = collect_sbr(sm.input.sbr, load_participants(sm.input.participants))
plot_sbr(table, sm.output.figure)
write_tsv(table, sm.output.table)
logger.info("%d subjects, %d mirrored; putamen SBR I median %.3f (normal) / %.3f (reduced)", len(table),
            int((table["mirrored"] == "yes").sum()),
            table.loc[table["label"] == "normal", "sbr_putamen_ipsi"].median(),
            table.loc[table["label"] == "reduced", "sbr_putamen_ipsi"].median())
