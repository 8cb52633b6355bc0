"""Rule adapter: a batch of subjects' DICOM NM projections (or reconstructed volumes) -> native NIfTI + geometry sidecar
(no header identifiers)."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import run_batch, setup_logging  # noqa: E402

from datxai.io import write_json  # noqa: E402
from datxai.recon import convert_volume_file, reconstruct_file  # noqa: E402

sm = snakemake  # noqa: F821
logger = setup_logging(sm)


def reconstruct(i, subject):
    if sm.params.source == "dicom_recon":  # reconstructed NM volumes: placed in patient RAS, not reconstructed again
        summary = convert_volume_file(sm.input.dicom[i], sm.output.image[i])
        write_json({"subject": subject, **summary}, sm.output.sidecar[i])
        logger.info("%s: volume %s of %s mm", subject, summary["shape"], summary["voxel_mm"])
        return
    summary = reconstruct_file(sm.input.dicom[i], sm.output.image[i], sm.params.reconstruct)
    write_json({"subject": subject, **summary}, sm.output.sidecar[i])
    logger.info("%s: %s voxels of %.3f mm", subject, summary["shape"], summary["bin_mm"])


run_batch(sm, logger, reconstruct)
