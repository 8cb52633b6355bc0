"""Rule adapter: t-tests, ROC and correlations of cluster uptake; the focus cluster; an HTML table view."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

from datxai.io import read_tsv, write_json, write_tsv  # noqa: E402
from datxai.stats.analysis import load_merged, uptake_statistics  # noqa: E402
from datxai.stats.figures import tables_html  # noqa: E402

logger = setup_logging(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
table = load_merged(sm.input.uptake, sm.input.participants, sm.input.split, sm.input.sbr)
clusters = read_tsv(sm.input.clusters_tsv, required=["cluster", "label", "side"])
focus = dict(sm.params.focus or {})
out = uptake_statistics(table, clusters, sm.params.ttest, focus.get("label"), focus.get("side"))
out["focus"]["roi_setting"] = sm.params.roi_setting
for name in ("ttests", "roc", "correlation", "ancova"):
    write_tsv(out[name], sm.output[name])
write_json(out["focus"], sm.output.focus)
tables_html({"t-tests, reduced vs normal (reduced minus normal; Holm within subset)": out["ttests"],
             "ROC, lower uptake = reduced (AUC with DeLong 95 % CI; P Mann-Whitney)": out["roc"],
             "Pearson correlation with ipsilateral putamen SBR (Fisher-z 95 % CI)": out["correlation"],
             "ANCOVA: reduced minus normal adjusted for the ipsilateral putamen SBR (spill-over check; OLS, "
             "Holm within subset)": out["ancova"]},
            sm.output.html, title=f"Cluster uptake statistics, clusters of setting '{sm.params.roi_setting}'")
logger.info("focus cluster: %s", out["focus"])
