# Preprocessing of MNI-space images (S1): scale to the 75th percentile of the
# reference region, putamen/caudate SBR by hottest voxels, mirror so that the
# lower putamen is left (ipsilateral); then one SBR table and its QC.


for k, members in SUBJECT_BATCHES.items():

    rule:
        """Scale, quantify and mirror a batch's normalised images; an image is mirrored when its right putamen SBR is lower."""
        name:
            batch_rule("scale_and_quantify", k)
        input:
            image=expand(
                res("normalized", "{subject}_space-MNI_spect.nii.gz"), subject=members
            ),
            atlas=res("atlas", "atlas_grid.npz"),
        output:
            scaled=expand(
                res("scaled", "{subject}_space-MNI_desc-scaled_spect.nii.gz"),
                subject=members,
            ),
            sbr=expand(res("quant", "{subject}_sbr.json"), subject=members),
        log:
            batch_log("scale_and_quantify", k),
        benchmark:
            batch_bench("scale_and_quantify", k)
        group:
            "preproc"
        conda:
            "../../envs/recon.yaml"
        resources:
            runtime=1 + len(members) // 20,
            mem_mb=1500,
        params:
            subjects=members,
            grid=config["grid"],
            percentile=config["scale"]["reference_percentile"],
            margin_mm=config["quantify"]["putamen_margin_mm"],
            hottest_ml=config["quantify"]["hottest_volume_ml"],
        script:
            "../../scripts/scale_and_quantify.py"


rule collect_sbr:
    input:
        sbr=expand(res("quant", "{subject}_sbr.json"), subject=SUBJECTS),
        participants=participants_tsv(),
    output:
        table=report(
            res("quant", "sbr.tsv"),
            caption="../report/sbr_table.rst",
            category="Preprocessing QC",
            labels={"figure": "putamen and caudate SBR (table)"},
        ),
        figure=report(
            res("figures", "sbr_ipsi_vs_contra.png"),
            caption="../report/sbr_scatter.rst",
            category="Preprocessing QC",
            labels={"figure": "putamen SBR I vs C"},
        ),
    log:
        log("collect_sbr.log"),
    conda:
        "../../envs/recon.yaml"
    script:
        "../../scripts/collect_sbr.py"


rule validate_sbr:
    """Synthetic cohort only: measured putamen SBR and lateralisation against the simulator's truth."""
    input:
        sbr=res("quant", "sbr.tsv"),
        truth=res("cohort", "truth", "cohort_truth.tsv"),
    output:
        report(
            res("validation", "sbr_vs_truth.tsv"),
            caption="../report/sbr_validation.rst",
            category="Validation against the synthetic truth",
            labels={"table": "SBR vs truth"},
        ),
    log:
        log("validate_sbr.log"),
    conda:
        "../../envs/recon.yaml"
    script:
        "../../scripts/validate_sbr.py"
