# Provenance of the run (config, versions, git commit, input checksums, seeds,
# devices) and its check after the run. The report itself is built with
# `snakemake --report results/report.html`; its front page is workflow/report/workflow.rst.


def provenance_images(wildcards):
    """The cohort's raw inputs that are checksummed: DICOM projections (synthetic) or the user's images."""
    if SYNTHETIC:
        return expand(res("cohort", "dicom", "{subject}.dcm"), subject=SUBJECTS)
    pattern = config["cohort"]["images"]
    return expand(pattern, subject=SUBJECTS) if pattern else []


def hyperparameter_files(wildcards):
    """train/{setting}/hyperparameters.json of every setting (they record the device each model trained on)."""
    return expand(res("train", "{setting}", "hyperparameters.json"), setting=SETTINGS)


def report_targets():
    """What the report stage contributes to `rule all`."""
    return [res("provenance.json"), res("provenance_check.tsv")]


rule write_provenance:
    """Resolved config, package versions, git commit, sha256 of every input, seeds and training devices."""
    input:
        participants=participants_tsv(),
        images=provenance_images,
        hyperparameters=hyperparameter_files,
    output:
        json=res("provenance.json"),
        tsv=res("provenance.tsv"),
        html=report(
            res("provenance.html"),
            caption="../report/provenance_table.rst",
            category="Provenance",
            labels={"item": "provenance of this run"},
        ),
    log:
        log("write_provenance.log"),
    conda:
        "../../envs/stats.yaml"
    params:
        settings=SETTINGS,
        source_root=workflow.basedir,
    script:
        "../../scripts/write_provenance.py"


rule verify_inputs:
    """After the statistics, recompute the input checksums of provenance.json; fails if an input changed."""
    input:
        provenance=res("provenance.json"),
        stats=stats_targets(),
    output:
        report(
            res("provenance_check.tsv"),
            caption="../report/provenance_check.rst",
            category="Provenance",
            labels={"item": "input checksums after the run"},
        ),
    log:
        log("verify_inputs.log"),
    conda:
        "../../envs/stats.yaml"
    script:
        "../../scripts/verify_provenance.py"
