# Cluster-uptake statistics (S1): the extrastriatal clusters of setting
# config["stats"]["roi_setting"] become ROIs; their mean scaled uptake is compared
# between reduced and normal (t-tests, ROC) in train and test and correlated with
# the ipsilateral putamen SBR; Figs. 4-5; the putamen SBR as a conventional classifier.


rule cluster_uptake:
    """Mean scaled uptake of every subject in every cluster, read from the stack of scaled images."""
    input:
        stack=rules.stack_scaled_images.output.npy,
        stack_sidecar=rules.stack_scaled_images.output.sidecar,
        clusters_nii=res("group", ROI_SETTING, ROI_CLUSTERS[0]),
        clusters_tsv=res("group", ROI_SETTING, ROI_CLUSTERS[1]),
    output:
        uptake=res("stats", "uptake.tsv"),
    log:
        log("cluster_uptake.log"),
    benchmark:
        bench("cluster_uptake.tsv")
    conda:
        "../../envs/stats.yaml"
    params:
        subjects=SUBJECTS,
    script:
        "../../scripts/cluster_uptake.py"


rule compute_uptake_statistics:
    """t-tests (train, test) with Holm, ROC with DeLong CI, correlation with the putamen SBR, ANCOVA adjusted for
    the putamen SBR (spill-over check); the focus cluster."""
    input:
        uptake=res("stats", "uptake.tsv"),
        participants=participants_tsv(),
        split=res("split", "split.tsv"),
        sbr=res("quant", "sbr.tsv"),
        clusters_tsv=res("group", ROI_SETTING, ROI_CLUSTERS[1]),
    output:
        ttests=report(
            res("stats", "ttests.tsv"),
            caption="../report/stats_ttests.rst",
            category="Uptake statistics",
            labels={"item": "t-tests of cluster uptake (table)"},
        ),
        roc=report(
            res("stats", "roc.tsv"),
            caption="../report/stats_roc.rst",
            category="Uptake statistics",
            labels={"item": "ROC of cluster uptake (table)"},
        ),
        correlation=report(
            res("stats", "correlation.tsv"),
            caption="../report/stats_correlation.rst",
            category="Uptake statistics",
            labels={"item": "uptake vs putamen SBR (table)"},
        ),
        ancova=report(
            res("stats", "ancova.tsv"),
            caption="../report/stats_ancova.rst",
            category="Uptake statistics",
            labels={
                "item": "uptake adjusted for the putamen SBR (spill-over check, table)"
            },
        ),
        html=report(
            res("stats", "uptake_statistics.html"),
            caption="../report/stats_tables.rst",
            category="Uptake statistics",
            labels={"item": "all cluster statistics (view)"},
        ),
        focus=res("stats", "focus.json"),
    log:
        log("compute_uptake_statistics.log"),
    conda:
        "../../envs/stats.yaml"
    params:
        ttest=config["stats"]["ttest"],
        focus=config["stats"]["focus"],
        roi_setting=ROI_SETTING,
    script:
        "../../scripts/uptake_statistics.py"


rule plot_stats_figures:
    input:
        uptake=res("stats", "uptake.tsv"),
        participants=participants_tsv(),
        split=res("split", "split.tsv"),
        sbr=res("quant", "sbr.tsv"),
        focus=res("stats", "focus.json"),
    output:
        fig4=report(
            res("figures", "fig4_focus_uptake.png"),
            caption="../report/stats_fig4.rst",
            category="Uptake statistics",
            labels={"item": "Fig. 4: focus-cluster uptake and ROC"},
        ),
        fig5=report(
            res("figures", "fig5_uptake_vs_sbr.png"),
            caption="../report/stats_fig5.rst",
            category="Uptake statistics",
            labels={"item": "Fig. 5: focus uptake vs putamen SBR"},
        ),
    log:
        log("plot_stats_figures.log"),
    conda:
        "../../envs/stats.yaml"
    script:
        "../../scripts/plot_stats_figures.py"


rule compare_sbr_classifier:
    """The conventional comparator: ipsilateral putamen SBR, Youden cut-off on the training set."""
    input:
        sbr=res("quant", "sbr.tsv"),
        participants=participants_tsv(),
        split=res("split", "split.tsv"),
    output:
        report(
            res("stats", "sbr_comparator.tsv"),
            caption="../report/stats_comparator.rst",
            category="Classification",
            labels={
                "setting": "putamen SBR (conventional)",
                "item": "SBR cut-off performance",
            },
        ),
    log:
        log("compare_sbr_classifier.log"),
    conda:
        "../../envs/stats.yaml"
    params:
        column="sbr_putamen_ipsi",
    script:
        "../../scripts/sbr_comparator.py"
