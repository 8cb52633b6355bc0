# Provenance of the run (config, versions, git commit, input checksums, seeds,
# devices) and its check after the run. The report itself is built with
# `snakemake --report results/report.html`; its front page is workflow/report/workflow.rst.


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
        config_sha256=config_digest(),
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
