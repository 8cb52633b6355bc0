"""Rule adapter: mean scaled uptake of every subject in every cluster of one setting (long TSV)."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

from datxai.dataset import ImageStack  # noqa: E402
from datxai.io import write_tsv  # noqa: E402
from datxai.stats.uptake import compute_uptake  # noqa: E402

logger = setup_logging(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
stack = ImageStack(sm.input.stack, sm.input.stack_sidecar)
table = compute_uptake(list(sm.params.subjects), stack, sm.input.clusters_nii, sm.input.clusters_tsv)
write_tsv(table, sm.output.uptake)
logger.info("wrote %s (%d rows)", sm.output.uptake, len(table))
