"""Rule adapter: one subject's DICOM NM projections -> native NIfTI + geometry sidecar (no header identifiers)."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

from datxai.io import write_json  # noqa: E402
from datxai.recon import reconstruct_file  # noqa: E402

sm = snakemake  # noqa: F821
logger = setup_logging(sm)
summary = reconstruct_file(sm.input.dicom, sm.output.image, sm.params.reconstruct)
write_json({"subject": sm.wildcards.subject, **summary}, sm.output.sidecar)
logger.info("%s: %s voxels of %.3f mm", sm.wildcards.subject, summary["shape"], summary["bin_mm"])
