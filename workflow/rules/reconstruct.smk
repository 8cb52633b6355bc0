# Reconstruction: DICOM NM projections -> native-space SPECT (FBP, Shepp-Logan,
# cut-off in cycles/cm, no attenuation correction unless configured).


rule reconstruct_spect:
    """Filtered back-projection of one subject's projections into native space (RAS+, bin-size voxels).

    The JSON sidecar holds the acquisition geometry and the parameters, never header identifiers.
    """
    input:
        dicom=projections_dicom,
    output:
        image=res("recon", "{subject}_spect.nii.gz"),
        sidecar=res("recon", "{subject}_spect.json"),
    log:
        log("reconstruct_spect", "{subject}.log"),
    benchmark:
        bench("reconstruct_spect", "{subject}.tsv")
    group:
        "recon"
    conda:
        "../../envs/recon.yaml"
    params:
        reconstruct=config["reconstruct"],
    script:
        "../../scripts/reconstruct_spect.py"
