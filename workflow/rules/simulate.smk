# The synthetic cohort (cohort.source: synthetic): participants and truth, the
# phantom anatomy, one camera export (DICOM NM) per subject, and a montage.
# The truth under cohort/truth/ is read by validation rules only, never by the analysis.


rule simulate_participants:
    """Draw the whole cohort at once (ages, sexes, classes, doses, binding, poses, reader flips)."""
    output:
        participants=res("cohort", "participants.tsv"),
        truth=res("cohort", "truth", "cohort_truth.tsv"),
    log:
        log("simulate_participants.log"),
    conda:
        "../../envs/recon.yaml"
    params:
        simulate=config["simulate"],
        seed=config["seed"],
    script:
        "../../scripts/simulate_participants.py"


rule simulate_anatomy:
    """The packaged atlases on the phantom grid, once per run (per-subject jobs then load it in ~0.1 s)."""
    output:
        res("cohort", "truth", "phantom_anatomy.npz"),
    log:
        log("simulate_anatomy.log"),
    conda:
        "../../envs/recon.yaml"
    params:
        simulate=config["simulate"],
        grid=config["grid"],
    script:
        "../../scripts/simulate_anatomy.py"


# One job per batch of subjects (common.smk: SUBJECT_BATCHES); each subject's
# phantom, noise and DICOM identity come from the seed and its ID alone, so the
# batching does not change a single voxel.
for k, members in (SUBJECT_BATCHES if SYNTHETIC else {}).items():

    rule:
        name:
            batch_rule("simulate_subject", k)
        input:
            truth=res("cohort", "truth", "cohort_truth.tsv"),
            anatomy=res("cohort", "truth", "phantom_anatomy.npz"),
        output:
            dicom=expand(res("cohort", "dicom", "{subject}.dcm"), subject=members),
            truth=expand(
                res("cohort", "truth", "{subject}_truth.json"), subject=members
            ),
            activity=expand(
                res("cohort", "truth", "{subject}_activity.nii.gz"), subject=members
            ),
        log:
            batch_log("simulate_subject", k),
        benchmark:
            batch_bench("simulate_subject", k)
        group:
            "recon"
        conda:
            "../../envs/recon.yaml"
        resources:
            runtime=1 + len(members) // 10,
            mem_mb=1500,
        params:
            subjects=members,
            simulate=config["simulate"],
            grid=config["grid"],
            seed=config["seed"],
        script:
            "../../scripts/simulate_subject.py"


rule plot_cohort_montage:
    """Reads the truth (synthetic only) for the pose, to pick the sinogram row through the striata."""
    input:
        activity=montage_activity,
        dicom=montage_dicom,
        truth=montage_truth,
    output:
        report(
            res("cohort", "figures", "montage.png"),
            caption="../report/cohort_montage.rst",
            category="Cohort",
            labels={"figure": "synthetic cohort montage"},
        ),
    log:
        log("plot_cohort_montage.log"),
    conda:
        "../../envs/recon.yaml"
    params:
        subjects=montage_subjects(),
        labels=["normal", "reduced"],
        grid=config["grid"],
    script:
        "../../scripts/plot_cohort_montage.py"
