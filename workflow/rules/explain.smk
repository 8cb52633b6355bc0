# LRP relevance maps (zennit composite by layer name) per setting, group heat maps
# (mean TP - mean TN), extrastriatal clusters, the companion study's (S2) checks,
# Figs 1-3 and, for the synthetic cohort, the clusters against the planted truth.


rule compute_relevance:
    """LRP from the logit of the most activated (= evaluated) output (explain.target: predicted, S1/S2), of
    'reduced' in every case (reduced) or of the log-odds 'reduced' - 'normal' (margin): epsilon at Linear
    layers, alpha2-beta1 at conv4/conv3, flat at conv2/conv1, ReLUs passed through, biases out of the rules
    (explain.zero_params).
    Striatum-setting maps are placed back into the full grid (zero outside the box)."""
    input:
        model=res("train", "{setting}", "model.pt"),
        images=res("dataset", "{setting}", "test.npy"),
        table=res("dataset", "{setting}", "test.tsv"),
        predictions=res("evaluate", "{setting}_predictions.tsv"),
    output:
        maps=directory(res("relevance", "{setting}")),
    log:
        log("compute_relevance", "{setting}.log"),
    benchmark:
        bench("compute_relevance", "{setting}.tsv")
    conda:
        "../../envs/torch.yaml"
    threads: config["numerics"]["cpu_threads"]
    resources:
        gpu=1,
        runtime=lrp_runtime,
    params:
        # what the maps depend on (common.smk: not explain.batch_size, read by the script, nor the audit's keys)
        explain=LRP_PARAMS,
        device=config["explain"]["device"],
        grid=config["grid"],
        box_mm=config["settings"]["striatum_box_mm"],
        numerics=config["numerics"],
    script:
        "../../scripts/compute_relevance.py"


rule audit_relevance:
    """Faithfulness and sanity of one setting's relevance (explain.faithfulness): region perturbation of the test
    cases (LRP, gradient x input and random rankings; AOPC with bootstrap CIs), cascading parameter randomisation
    and the random-logit check. Reads the model and the data, not the maps: no map depends on it.
    """
    input:
        model=res("train", "{setting}", "model.pt"),
        images=res("dataset", "{setting}", "test.npy"),
        table=res("dataset", "{setting}", "test.tsv"),
        train=res("dataset", "{setting}", "train.npy"),
    output:
        curves=res("explain_audit", "{setting}", "perturbation_curves.tsv"),
        aopc=report(
            res("explain_audit", "{setting}", "aopc.tsv"),
            caption="../report/audit_aopc.rst",
            category="Relevance audit",
            labels={"setting": "{setting}", "table": "AOPC per ranking"},
        ),
        randomisation=report(
            res("explain_audit", "{setting}", "randomisation.tsv"),
            caption="../report/audit_randomisation.rst",
            category="Relevance audit",
            labels={"setting": "{setting}", "table": "randomisation checks"},
        ),
        figure=report(
            res("figures", "faithfulness_{setting}.png"),
            caption="../report/audit_figure.rst",
            category="Relevance audit",
            labels={
                "setting": "{setting}",
                "figure": "perturbation curves and randomisation",
            },
        ),
    log:
        log("audit_relevance", "{setting}.log"),
    benchmark:
        bench("audit_relevance", "{setting}.tsv")
    conda:
        "../../envs/torch.yaml"
    threads: config["numerics"]["cpu_threads"]
    resources:
        gpu=1,
    params:
        explain=LRP_PARAMS,
        checks={
            k: v
            for k, v in config["explain"]["faithfulness"].items()
            if k != "enabled"
        },
        seed=audit_seed,
        device=config["explain"]["device"],
        numerics=config["numerics"],
    script:
        "../../scripts/audit_relevance.py"


rule group_relevance:
    input:
        maps=res("relevance", "{setting}"),
    output:
        heat=res("group", "{setting}", "heat.nii.gz"),
        mean_tp=res("group", "{setting}", "mean_tp.nii.gz"),
        mean_tn=res("group", "{setting}", "mean_tn.nii.gz"),
        counts=res("group", "{setting}", "group.json"),
    log:
        log("group_relevance", "{setting}.log"),
    conda:
        "../../envs/torch.yaml"
    params:
        grid=config["grid"],
    script:
        "../../scripts/group_relevance.py"


rule find_clusters:
    """Threshold: group.percentile of the heat (group.heat_sign: positive as in S1, negative or |heat|) in the brain minus the striatum box.
    Clusters grow over the whole brain for full (S1: striatal clusters extend into insula, thalamus,
    amygdala) and outside the box for nostriatum (its box holds no image)."""
    input:
        heat=res("group", "{setting}", "heat.nii.gz"),
        atlas=res("atlas", "atlas_grid.npz"),
    output:
        clusters=res("group", "{setting}", "clusters.nii.gz"),
        table=report(
            res("group", "{setting}", "clusters.tsv"),
            caption="../report/clusters_table.rst",
            category="Relevance",
            labels={
                "setting": "{setting}",
                "table": "extrastriatal relevance clusters",
            },
        ),
    log:
        log("find_clusters", "{setting}.log"),
    conda:
        "../../envs/torch.yaml"
    params:
        grid=config["grid"],
        box_mm=config["settings"]["striatum_box_mm"],
        percentile=config["group"]["percentile"],
        heat_sign=config["group"]["heat_sign"],
        connectivity=config["group"]["connectivity"],
        min_cluster_ml=config["group"]["min_cluster_ml"],
    script:
        "../../scripts/find_clusters.py"


rule voxelwise_comparator:
    """The comparator of the relevance clusters: a two-sample t (reduced - normal) of the scaled, mirrored images
    per brain voxel of one subset, max-T permutation FWE over the brain (nilearn permuted_ols), clusters of the
    significant voxels outside the striatum box, atlas-labelled like the relevance clusters.
    """
    input:
        stack=rules.stack_scaled_images.output.npy,
        stack_sidecar=rules.stack_scaled_images.output.sidecar,
        participants=participants_tsv(),
        split=res("split", "split.tsv"),
        atlas=res("atlas", "atlas_grid.npz"),
    output:
        tmap=res("comparator", "{subset}", "tmap.nii.gz"),
        clusters=res("comparator", "{subset}", "clusters.nii.gz"),
        table=report(
            res("comparator", "{subset}", "clusters.tsv"),
            caption="../report/comparator_clusters.rst",
            category="Voxelwise comparator",
            labels={"subset": "{subset}", "table": "voxelwise FWE clusters"},
        ),
        summary=res("comparator", "{subset}", "summary.json"),
    log:
        log("voxelwise_comparator", "{subset}.log"),
    benchmark:
        bench("voxelwise_comparator", "{subset}.tsv")
    wildcard_constraints:
        subset="train|test",
    conda:
        "../../envs/stats.yaml"
    threads: config["numerics"]["cpu_threads"]
    params:
        grid=config["grid"],
        box_mm=config["settings"]["striatum_box_mm"],
        voxelwise=config["group"]["voxelwise"],
        seed=voxelwise_seed,
        connectivity=config["group"]["connectivity"],
        min_cluster_ml=config["group"]["min_cluster_ml"],
    script:
        "../../scripts/voxelwise_comparator.py"


rule compare_methods:
    """Relevance clusters (group.settings) and voxelwise clusters (train, test) side by side: each cluster's
    distance to the striatum and to the box; region x method; the comparator's figure beside Fig 3.
    """
    input:
        lrp_niftis=cluster_niftis,
        lrp_tables=cluster_tables,
        vox_niftis=comparator_files("clusters.nii.gz"),
        vox_tables=comparator_files("clusters.tsv"),
        vox_tmaps=comparator_files("tmap.nii.gz"),
        vox_summaries=comparator_files("summary.json"),
        atlas=res("atlas", "atlas_grid.npz"),
    output:
        long=report(
            res("comparator", "methods_clusters.tsv"),
            caption="../report/comparator_methods_clusters.rst",
            category="Voxelwise comparator",
            labels={"table": "every cluster of every method, with distances"},
        ),
        wide=report(
            res("comparator", "methods.tsv"),
            caption="../report/comparator_methods.rst",
            category="Voxelwise comparator",
            labels={"table": "what each method found, side by side"},
        ),
        figure=report(
            res("figures", "fig3_voxelwise.png"),
            caption="../report/comparator_fig.rst",
            category="Voxelwise comparator",
            labels={"figure": "voxelwise FWE clusters (beside Fig 3)"},
        ),
    log:
        log("compare_methods.log"),
    conda:
        "../../envs/stats.yaml"
    params:
        grid=config["grid"],
        box_mm=config["settings"]["striatum_box_mm"],
        settings=CLUSTER_SETTINGS,
        subsets=COMPARATOR_SUBSETS,
    script:
        "../../scripts/compare_methods.py"


use rule compute_relevance as compute_relevance_repeat with:
    input:
        model=res("train", "{setting}", "repeat-{repeat}", "model.pt"),
        images=res("dataset", "{setting}", "test.npy"),
        table=res("dataset", "{setting}", "test.tsv"),
        predictions=res(
            "evaluate", "repeats", "{setting}_repeat-{repeat}_predictions.tsv"
        ),
    output:
        maps=directory(res("relevance_repeats", "{setting}", "repeat-{repeat}")),
    log:
        log("compute_relevance", "{setting}_repeat-{repeat}.log"),
    benchmark:
        bench("compute_relevance", "{setting}_repeat-{repeat}.tsv")


use rule group_relevance as group_relevance_repeat with:
    input:
        maps=res("relevance_repeats", "{setting}", "repeat-{repeat}"),
    output:
        heat=res("group_repeats", "{setting}", "repeat-{repeat}", "heat.nii.gz"),
        mean_tp=res("group_repeats", "{setting}", "repeat-{repeat}", "mean_tp.nii.gz"),
        mean_tn=res("group_repeats", "{setting}", "repeat-{repeat}", "mean_tn.nii.gz"),
        counts=res("group_repeats", "{setting}", "repeat-{repeat}", "group.json"),
    log:
        log("group_relevance", "{setting}_repeat-{repeat}.log"),


use rule find_clusters as find_clusters_repeat with:
    input:
        heat=res("group_repeats", "{setting}", "repeat-{repeat}", "heat.nii.gz"),
        atlas=res("atlas", "atlas_grid.npz"),
    output:
        clusters=res("group_repeats", "{setting}", "repeat-{repeat}", "clusters.nii.gz"),
        table=res("group_repeats", "{setting}", "repeat-{repeat}", "clusters.tsv"),
    log:
        log("find_clusters", "{setting}_repeat-{repeat}.log"),


rule cluster_stability:
    """train.repeats > 1: do the setting's relevance clusters survive another training seed? Dice of the cluster
    masks between every pair of repeats (repeat 0 = the study's), the voxel stability map (share of repeats
    with the voxel in a cluster), the clusters of the mean heat over the repeats with their mean stability.
    """
    input:
        clusters=repeat_files("clusters.nii.gz"),
        heats=repeat_files("heat.nii.gz"),
        atlas=res("atlas", "atlas_grid.npz"),
    output:
        dice=report(
            res("group", "{setting}", "stability_dice.tsv"),
            caption="../report/stability_dice.rst",
            category="Relevance",
            labels={
                "setting": "{setting}",
                "table": "cluster Dice between training repeats",
            },
        ),
        stability=res("group", "{setting}", "stability.nii.gz"),
        clusters=res("group", "{setting}", "mean_heat_clusters.nii.gz"),
        table=report(
            res("group", "{setting}", "mean_heat_clusters.tsv"),
            caption="../report/stability_clusters.rst",
            category="Relevance",
            labels={
                "setting": "{setting}",
                "table": "clusters of the mean heat over repeats",
            },
        ),
    log:
        log("cluster_stability", "{setting}.log"),
    conda:
        "../../envs/torch.yaml"
    params:
        grid=config["grid"],
        box_mm=config["settings"]["striatum_box_mm"],
        percentile=config["group"]["percentile"],
        heat_sign=config["group"]["heat_sign"],
        connectivity=config["group"]["connectivity"],
        min_cluster_ml=config["group"]["min_cluster_ml"],
    script:
        "../../scripts/cluster_stability.py"


rule companion_analyses:
    """S2: mean relevance over the hottest voxels of the ipsilateral putamen (by image or relevance, in the
    test images and maps of the full setting), its sign as a classifier, inconsistent maps.
    """
    input:
        maps=res("relevance", COMPANION_SETTING),
        images=res("dataset", COMPANION_SETTING, "test.npy"),
        table=res("dataset", COMPANION_SETTING, "test.tsv"),
        mean_tn=res("group", COMPANION_SETTING, "mean_tn.nii.gz"),
        mean_tp=res("group", COMPANION_SETTING, "mean_tp.nii.gz"),
        atlas=res("atlas", "atlas_grid.npz"),
    output:
        table=report(
            res("companion", "putamen_relevance.tsv"),
            caption="../report/companion_table.rst",
            category="Companion analyses",
            labels={"table": "ipsilateral putamen relevance per test case"},
        ),
        summary=report(
            res("companion", "summary.tsv"),
            caption="../report/companion_summary.rst",
            category="Companion analyses",
            labels={"table": "putamen-relevance sign as a classifier"},
        ),
        histogram=report(
            res("figures", "companion_putamen_histogram.png"),
            caption="../report/companion_histogram.rst",
            category="Companion analyses",
            labels={"figure": "putamen relevance histogram (S2 Fig 5)"},
        ),
        panel=report(
            res("figures", "companion_misclassified.png"),
            caption="../report/companion_misclassified.rst",
            category="Companion analyses",
            labels={"figure": "misclassified cases (S2 Fig 4)"},
        ),
    log:
        log("companion_analyses.log"),
    conda:
        "../../envs/torch.yaml"
    params:
        grid=config["grid"],
        setting=COMPANION_SETTING,
        box_mm=config["settings"]["striatum_box_mm"],
        margin_mm=config["quantify"]["putamen_margin_mm"],
        hottest_ml=config["quantify"]["hottest_volume_ml"],
        putamen_select=config["group"]["putamen_select"],
    script:
        "../../scripts/companion_analyses.py"


rule plot_relevance_figures:
    input:
        heat=group_files("heat.nii.gz"),
        mean_tp=group_files("mean_tp.nii.gz"),
        mean_tn=group_files("mean_tn.nii.gz"),
        counts=group_files("group.json"),
        clusters=cluster_niftis,
        atlas=res("atlas", "atlas_grid.npz"),
    output:
        fig1=report(
            res("figures", "fig1_relevance.png"),
            caption="../report/relevance_fig1.rst",
            category="Relevance",
            labels={"figure": "Fig 1: mean relevance TP, TN and heat"},
        ),
        fig2=report(
            res("figures", "fig2_heat_striatum.png"),
            caption="../report/relevance_fig2.rst",
            category="Relevance",
            labels={"figure": "Fig 2: heat through the striatum"},
        ),
        fig3=report(
            res("figures", "fig3_clusters.png"),
            caption="../report/relevance_fig3.rst",
            category="Relevance",
            labels={"figure": "Fig 3: extrastriatal clusters"},
        ),
    log:
        log("plot_relevance_figures.log"),
    conda:
        "../../envs/torch.yaml"
    params:
        grid=config["grid"],
        box_mm=config["settings"]["striatum_box_mm"],
        percentile=config["group"]["percentile"],
        heat_sign=config["group"]["heat_sign"],
        settings=SETTINGS,
        cluster_settings=CLUSTER_SETTINGS,
    script:
        "../../scripts/plot_relevance_figures.py"


rule validate_clusters:
    """Synthetic cohort only; the only rule of this stage that reads the truth. The voxelwise comparator's
    clusters are validated like the relevance clusters (setting voxelwise_train, voxelwise_test).
    """
    input:
        clusters=cluster_tables,
        comparator=comparator_files("clusters.tsv"),
        truth=truth_jsons,
    output:
        table=report(
            res("validation", "clusters_vs_truth.tsv"),
            caption="../report/clusters_validation.rst",
            category="Validation against the synthetic truth",
            labels={"table": "clusters vs planted regions"},
        ),
    log:
        log("validate_clusters.log"),
    conda:
        "../../envs/torch.yaml"
    params:
        settings=CLUSTER_SETTINGS + [f"voxelwise_{s}" for s in COMPARATOR_SUBSETS],
        min_share=config["group"]["truth_min_share"],
    script:
        "../../scripts/validate_clusters.py"


rule validate_findings:
    """Synthetic cohort only: what each cluster means and what each method could have found. The noise-free truth
    of the training subjects, with and without the planted effects, blurred by the chain's fitted resolution,
    splits every cluster's observed difference into planted effect and striatal spill-over (planted / spill-over /
    spurious); each planted region's visibility per setting and the effect the chain leaves of it (expected |t| at
    the subset's n against the voxelwise FWE threshold) read a miss as not visible, too weak or missed.
    """
    input:
        cohort_truth=res("cohort", "truth", "cohort_truth.tsv"),
        anatomy=res("cohort", "truth", "phantom_anatomy.npz"),
        truth=truth_jsons,
        atlas=res("atlas", "atlas_grid.npz"),
        sbr=res("quant", "sbr.tsv"),
        split=res("split", "split.tsv"),
        participants=participants_tsv(),
        stack=rules.stack_scaled_images.output.npy,
        stack_sidecar=rules.stack_scaled_images.output.sidecar,
        lrp_niftis=cluster_niftis,
        lrp_tables=cluster_tables,
        vox_niftis=comparator_files("clusters.nii.gz"),
        vox_tables=comparator_files("clusters.tsv"),
        vox_summaries=comparator_files("summary.json"),
        validation=res("validation", "clusters_vs_truth.tsv"),
    output:
        classes=report(
            res("validation", "clusters_classified.tsv"),
            caption="../report/validation_classes.rst",
            category="Validation against the synthetic truth",
            labels={"table": "clusters: planted, spill-over or spurious"},
        ),
        detectability=report(
            res("validation", "detectability.tsv"),
            caption="../report/validation_detectability.rst",
            category="Validation against the synthetic truth",
            labels={"table": "planted regions: visible, detectable, found"},
        ),
        recovery=report(
            res("validation", "recovery.tsv"),
            caption="../report/validation_recovery.rst",
            category="Validation against the synthetic truth",
            labels={"table": "recovery over the detectable planted regions"},
        ),
        resolution=res("validation", "truth_resolution.json"),
    log:
        log("validate_findings.log"),
    benchmark:
        bench("validate_findings.tsv")
    conda:
        "../../envs/stats.yaml"
    params:
        simulate=config["simulate"],
        grid=config["grid"],
        box_mm=config["settings"]["striatum_box_mm"],
        reference_percentile=config["scale"]["reference_percentile"],
        settings=CLUSTER_SETTINGS,
        subsets=COMPARATOR_SUBSETS,
    script:
        "../../scripts/validate_findings.py"
