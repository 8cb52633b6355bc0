"""Rule adapter (synthetic cohort only): measured putamen SBR and affected side against the truth."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

from datxai.io import read_tsv, write_tsv  # noqa: E402
from datxai.preprocess.quality import validate_sbr  # noqa: E402

logger = setup_logging(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
result = validate_sbr(read_tsv(sm.input.sbr, required=["subject"]), read_tsv(sm.input.truth, required=["subject"]))
write_tsv(result, sm.output[0])
for r in result.itertuples():
    logger.info("%s = %.4g (n = %d, P = %.3g)", r.measure, r.value, r.n, r.p)
