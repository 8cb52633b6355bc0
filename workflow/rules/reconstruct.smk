# Reconstruction: DICOM NM projections -> native-space SPECT (FBP, Shepp-Logan,
# cut-off in cycles/cm, no attenuation correction unless configured); with
# cohort.source dicom_recon, the user's reconstructed NM volumes -> the same NIfTI files.


for k, members in (
    SUBJECT_BATCHES if config["cohort"]["source"] != "nifti" else {}
).items():

    rule:
        """Filtered back-projection of a batch of subjects' projections into native space (RAS+, bin-size voxels),
        or (cohort.source dicom_recon) their reconstructed NM volumes written as NIfTI in patient RAS.

        The JSON sidecar holds the acquisition geometry and the parameters, never header identifiers.
        """
        name:
            batch_rule("reconstruct_spect", k)
        input:
            dicom=projections_dicom(members),
        output:
            image=expand(res("recon", "{subject}_spect.nii.gz"), subject=members),
            sidecar=expand(res("recon", "{subject}_spect.json"), subject=members),
        log:
            batch_log("reconstruct_spect", k),
        benchmark:
            batch_bench("reconstruct_spect", k)
        group:
            "recon"
        conda:
            "../../envs/recon.yaml"
        resources:
            runtime=1 + len(members) // 20,
            mem_mb=1500,
        params:
            subjects=members,
            reconstruct=(
                config["reconstruct"]
                if config["cohort"]["source"] != "dicom_recon"
                else None
            ),
            source=config["cohort"]["source"],
        script:
            "../../scripts/reconstruct_spect.py"
