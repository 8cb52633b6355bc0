"""Rule adapter: provenance.json (config, versions, git, input checksums, seeds, devices) and a table view."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

from datxai.io import write_json, write_tsv  # noqa: E402
from datxai.provenance import build_provenance, provenance_table  # noqa: E402
from datxai.stats.figures import tables_html  # noqa: E402

logger = setup_logging(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
hp = dict(zip(sm.params.settings, sm.input.hyperparameters))
inputs = [sm.input.participants, *sm.input.images]
# config_sha256 is the rule's parameter: a changed setting rewrites this file
prov = build_provenance(dict(sm.config), inputs, hp, root=sm.params.source_root,
                        extra={"config_sha256": sm.params.config_sha256})
write_json(prov, sm.output.json)
table = provenance_table(prov)
write_tsv(table, sm.output.tsv)
tables_html({"Provenance (all input checksums in provenance.json)": table}, sm.output.html, title="Provenance")
logger.info("git %s, %d input files hashed, devices %s", prov["git"], prov["inputs"]["n_files"], prov["devices"])
