"""Rule train_cnn: train the CNN of one setting; write model.pt, history.tsv, hyperparameters.json, checkpoint.pt."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

logger = setup_logging(snakemake)  # noqa: F821

from datxai.model.train import run_training  # noqa: E402
from datxai.numerics import pin_cpu_numerics  # noqa: E402

sm = snakemake  # noqa: F821
pin_cpu_numerics(**sm.params.numerics)  # before any torch computation
run_training(
    sm.input.train, sm.input.train_table, sm.input.val, sm.input.val_table,
    outputs={k: sm.output[k] for k in ("model", "history", "hyperparameters", "checkpoint")},
    model_cfg=sm.params.model, train_cfg=sm.params.train, setting=sm.wildcards.setting,
    master_seed=sm.params.seed, resume=sm.params.resume, epochs=sm.params.epochs, fc_widths=sm.params.fc_widths,
    repeat=int(getattr(sm.params, "repeat", 0)),  # train_cnn_repeat only; train_cnn is repeat 0
)
