# Stratified train / validation / test split (once), then one stacked dataset
# per setting (full, striatum, nostriatum) and subset.


rule split_cohort:
    """Sex x class strata, n_draws seeded random splits, the most age-balanced kept; ANOVA of age and sex."""
    input:
        participants=participants_tsv(),
    output:
        split=report(
            res("split", "split.tsv"),
            caption="../report/split_table.rst",
            category="Cohort",
            labels={"table": "train/val/test split"},
        ),
        balance=report(
            res("split", "balance.tsv"),
            caption="../report/split_balance.rst",
            category="Cohort",
            labels={"table": "split balance (ANOVA, counts)"},
        ),
    log:
        log("split_cohort.log"),
    conda:
        "../../envs/stats.yaml"
    params:
        sizes=config["split"]["sizes"],
        n_draws=config["split"]["n_draws"],
        seed=config["seed"],
    script:
        "../../scripts/split_cohort.py"


rule stack_scaled_images:
    """Every subject's scaled image read once into one memory-mapped array (rows in SUBJECTS order)."""
    input:
        images=scaled_images,
    output:
        npy=res("dataset", "scaled_stack.npy"),
        sidecar=res("dataset", "scaled_stack.json"),
    log:
        log("stack_scaled_images.log"),
    benchmark:
        bench("stack_scaled_images.tsv")
    conda:
        "../../envs/recon.yaml"
    resources:
        runtime=stack_runtime,
    params:
        subjects=SUBJECTS,
        grid=config["grid"],
    script:
        "../../scripts/stack_scaled_images.py"


rule build_dataset:
    """Stack one setting's images per subset (float32, N x nx x ny x nz, rows in split order)."""
    input:
        stack=rules.stack_scaled_images.output.npy,
        stack_sidecar=rules.stack_scaled_images.output.sidecar,
        split=res("split", "split.tsv"),
        participants=participants_tsv(),
    output:
        npy=expand(
            res("dataset", "{{setting}}", "{subset}.npy"),
            subset=["train", "val", "test"],
        ),
        tsv=expand(
            res("dataset", "{{setting}}", "{subset}.tsv"),
            subset=["train", "val", "test"],
        ),
        figure=report(
            res("figures", "dataset_{setting}.png"),
            caption="../report/dataset_class_means.rst",
            category="Preprocessing QC",
            labels={"figure": "class means", "setting": "{setting}"},
        ),
    log:
        log("build_dataset", "{setting}.log"),
    benchmark:
        bench("build_dataset", "{setting}.tsv")
    conda:
        "../../envs/recon.yaml"
    params:
        grid=config["grid"],
        box_mm=config["settings"]["striatum_box_mm"],
    script:
        "../../scripts/build_dataset.py"
