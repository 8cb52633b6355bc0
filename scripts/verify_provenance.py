"""Rule adapter: after the run, recompute the input checksums recorded in provenance.json."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

import pandas as pd  # noqa: E402

from datxai.io import write_tsv  # noqa: E402
from datxai.provenance import verify_checksums  # noqa: E402

logger = setup_logging(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
problems = verify_checksums(sm.input.provenance)
if problems:
    raise RuntimeError(f"{sm.input.provenance}: inputs changed during the run:\n  " + "\n  ".join(problems[:20]))
write_tsv(pd.DataFrame({"check": ["input checksums unchanged after the run"], "result": ["ok"]}), sm.output[0])
logger.info("all input checksums unchanged")
