# The packaged atlases brought once onto the analysis grid (read by per-subject and group rules).


rule prepare_atlas:
    """Resample the Harvard-Oxford atlas and MNI152 maps onto the analysis grid, once per run."""
    output:
        res("atlas", "atlas_grid.npz"),
    log:
        log("prepare_atlas.log"),
    conda:
        "../../envs/recon.yaml"
    params:
        grid=config["grid"],
    script:
        "../../scripts/prepare_atlas.py"
