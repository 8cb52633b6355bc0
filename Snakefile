# datxai — DAT-SPECT (123I-FP-CIT) with a 3-D CNN and layer-wise relevance propagation.
# Table of contents: config and validation (common.smk), one rule file per stage, rule all.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/atlas.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/reconstruct.smk"
include: "workflow/rules/normalize.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/split.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/explain.smk"
include: "workflow/rules/stats.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        final_targets(),
