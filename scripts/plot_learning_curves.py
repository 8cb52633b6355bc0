"""Rule plot_learning_curves: loss and accuracy per epoch of every setting's CNN."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

logger = setup_logging(snakemake)  # noqa: F821

from datxai.io import read_tsv  # noqa: E402
from datxai.model.plots import plot_learning_curves  # noqa: E402
from datxai.model.train import HISTORY_COLUMNS  # noqa: E402

sm = snakemake  # noqa: F821
histories = {s: read_tsv(p, required=list(HISTORY_COLUMNS)) for s, p in zip(sm.params.settings, sm.input.histories)}
plot_learning_curves(histories, sm.output.figure)
