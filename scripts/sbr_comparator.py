"""Rule adapter: ipsilateral putamen SBR as a classifier (Youden cut-off on train, performance per subset)."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

from datxai.io import read_tsv, write_tsv  # noqa: E402
from datxai.participants import load_participants  # noqa: E402
from datxai.stats.comparator import sbr_comparator  # noqa: E402
from datxai.stats.uptake import merge_uptake  # noqa: E402

logger = setup_logging(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
column = sm.params.column
sbr = read_tsv(sm.input.sbr, required=["subject", column])
table = merge_uptake(sbr, load_participants(sm.input.participants),
                     read_tsv(sm.input.split, required=["subject", "subset"]),
                     sources={"participants": sm.input.participants, "split": sm.input.split})
result = sbr_comparator(table, column=column)
write_tsv(result, sm.output[0])
logger.info("\n%s", result[["subset", "n", "cutoff", "accuracy", "sensitivity", "specificity"]].to_string(index=False))
