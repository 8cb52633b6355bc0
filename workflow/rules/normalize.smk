# Spatial normalisation: an FP-CIT template built from the cohort (or the user's),
# a 12-parameter affine per subject (nipype workflow), QC and, for synthetic
# cohorts, the error against the simulated head pose.


rule build_template:
    """Seed from the MNI anchor (the atlas seed through the study's camera and reconstruction at the MNI pose;
    normalize.template_space: anchor) or the atlas seed (seed), then register, average and symmetrise a
    label-balanced subset of the cohort; with the anchor, finally place the template on it (its affine to MNI).

    Only the template subjects' native images are inputs: the subset is chosen from
    the participants sheet (visual-read labels, config seed) when the DAG is built
    (common.smk: template_subjects), and checked against the sheet here.
    """
    input:
        images=template_candidate_images,
        sidecar=template_anchor_sidecar,
        participants=participants_tsv(),
        atlas=res("atlas", "atlas_grid.npz"),
    output:
        template=res("template", "fpcit_template.nii.gz"),
        subjects=res("template", "template_subjects.tsv"),
        space=res("template", "template_space.json"),
    log:
        log("build_template.log"),
    benchmark:
        bench("build_template.tsv")
    conda:
        NORMALIZE_ENV
    params:
        normalize=config["normalize"],
        grid=config["grid"],
        seed=config["seed"],
        subjects=lambda wildcards: list(template_subjects()),
        # normalize.template_space anchor: what the MNI anchor depends on (datxai.mni_anchor)
        anchor=TEMPLATE_ANCHOR_PARAMS,
    script:
        "../../scripts/build_template.py"


for k, members in SUBJECT_BATCHES.items():

    rule:
        """Smooth -> 12-parameter affine -> reslice to the MNI grid, for the subjects of a batch.

        normalize.engine nipype: a nipype workflow in a temporary folder per subject;
        torch: the batch's affines estimated at once on normalize.device (a GPU when present).

        Grouped as "preproc", not with the reconstruction: the cohort template
        depends on some subjects' native images, so a group holding both reconstruction
        and normalisation of a template subject would depend on itself through build_template.
        """
        name:
            batch_rule("normalize_to_mni", k)
        input:
            image=native_images(members),
            template=template_image,
        output:
            image=expand(
                res("normalized", "{subject}_space-MNI_spect.nii.gz"), subject=members
            ),
            affine=expand(res("normalized", "{subject}_affine.json"), subject=members),
        log:
            batch_log("normalize_to_mni", k),
        benchmark:
            batch_bench("normalize_to_mni", k)
        group:
            "preproc"
        conda:
            NORMALIZE_ENV
        resources:
            runtime=2 + len(members) // 5,
            mem_mb=2000,
        params:
            subjects=members,
            normalize=config["normalize"],
            grid=config["grid"],
        script:
            "../../scripts/normalize_to_mni.py"


rule collect_registration:
    input:
        affines=affine_jsons,
    output:
        table=report(
            res("qc", "registration.tsv"),
            caption="../report/normalize_registration.rst",
            category="Preprocessing QC",
            labels={"figure": "registration per subject (table)"},
        ),
    log:
        log("collect_registration.log"),
    conda:
        "../../envs/recon.yaml"
    params:
        subjects=SUBJECTS,
    script:
        "../../scripts/collect_registration.py"


rule plot_normalize_qc:
    input:
        images=normalized_images,
        registration=res("qc", "registration.tsv"),
        template=template_image,
    output:
        montage=report(
            res("qc", "normalize_montage.png"),
            caption="../report/normalize_montage.rst",
            category="Preprocessing QC",
            labels={"figure": "normalisation montage"},
        ),
    log:
        log("plot_normalize_qc.log"),
    conda:
        "../../envs/recon.yaml"
    params:
        grid=config["grid"],
        subjects=SUBJECTS,
        n_show=8,
    script:
        "../../scripts/plot_normalize_qc.py"


rule validate_registration:
    """Synthetic cohort only: estimated affines against the simulated head poses (reads the truth)."""
    input:
        affines=affine_jsons,
        truths=truth_jsons,
        atlas=res("atlas", "atlas_grid.npz"),
    output:
        table=report(
            res("validation", "registration_vs_truth.tsv"),
            caption="../report/normalize_validation.rst",
            category="Validation against the synthetic truth",
            labels={"table": "registration error vs truth"},
        ),
    log:
        log("validate_registration.log"),
    conda:
        "../../envs/recon.yaml"
    params:
        grid=config["grid"],
        subjects=SUBJECTS,
    script:
        "../../scripts/validate_registration.py"
