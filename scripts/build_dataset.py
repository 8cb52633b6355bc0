"""Rule adapter: stack one setting's scaled images per subset (train, val, test)."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

from datxai.dataset import ImageStack, build_dataset, plot_class_means  # noqa: E402
from datxai.grid import Grid  # noqa: E402
from datxai.io import read_tsv, write_tsv  # noqa: E402
from datxai.participants import load_participants  # noqa: E402
from datxai.split import SUBSETS, check_leakage  # noqa: E402

logger = setup_logging(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
grid = Grid.from_config(sm.params.grid)
images = ImageStack(sm.input.stack, sm.input.stack_sidecar)
participants = load_participants(sm.input.participants)
labels = dict(zip(participants["subject"], participants["label"]))
split = read_tsv(sm.input.split, required=["subject", "subset"])
check_leakage(split, source=sm.input.split)
for subset, npy, tsv in zip(SUBSETS, sm.output.npy, sm.output.tsv):
    subjects = list(split.loc[split["subset"] == subset, "subject"])
    table = build_dataset(images, subjects, labels, sm.wildcards.setting, grid, sm.params.box_mm, npy)
    write_tsv(table, tsv)
    logger.info("%s/%s: %d subjects (%d reduced)", sm.wildcards.setting, subset, len(table), int(table["y"].sum()))
plot_class_means(sm.output.npy[0], sm.output.tsv[0], sm.output.figure, sm.wildcards.setting)
