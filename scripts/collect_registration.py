"""Rule adapter: per-subject affine JSONs -> qc/registration.tsv."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

from datxai.io import write_tsv  # noqa: E402
from datxai.register.qc import registration_table  # noqa: E402

sm = snakemake  # noqa: F821
logger = setup_logging(sm)
records = {}
for subject, path in zip(sm.params.subjects, sm.input.affines):
    with open(path) as fh:
        records[subject] = json.load(fh)
table = registration_table(records)
write_tsv(table, sm.output.table)
bad = table[table["diverged"] == "yes"]
for _, row in bad.iterrows():
    logger.warning("%s: registration diverged (%s)", row["subject"], row["flags"])
logger.info("%d subjects, %d diverged, %d not converged; median cost %.4g, median correlation %.3f", len(table),
            len(bad), int((table["converged"] == "no").sum()), table["cost"].median(), table["correlation"].median())
