"""Rule validate_clusters (synthetic cohort only): planted extrastriatal regions vs the clusters found."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

from datxai.group.run import run_validate_clusters  # noqa: E402

logger = setup_logging(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
run_validate_clusters(dict(zip(sm.params.settings, [*sm.input.clusters, *sm.input.comparator])), sm.input.truth,
                      sm.output.table,
                      min_share=sm.params.min_share)
