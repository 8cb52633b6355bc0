"""Rule adapter: scale, quantify (SBR by hottest voxels) and mirror one subject's MNI-space image."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

from datxai.atlas import load_bundle  # noqa: E402
from datxai.grid import Grid  # noqa: E402
from datxai.preprocess.quality import process_file  # noqa: E402

logger = setup_logging(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
atlas = load_bundle(sm.input.atlas, grid=Grid.from_config(sm.params.grid))
rec = process_file(sm.input.image, atlas, sm.output.scaled, sm.output.sbr, sm.wildcards.subject,
                   sm.params.percentile, sm.params.margin_mm, sm.params.hottest_ml)
logger.info("%s: reference %.4g, putamen SBR I %.3f C %.3f, caudate I %.3f C %.3f, mirrored %s (%d hottest voxels)",
            sm.wildcards.subject, rec["reference_p75"], rec["sbr_putamen_ipsi"], rec["sbr_putamen_contra"],
            rec["sbr_caudate_ipsi"], rec["sbr_caudate_contra"], rec["mirrored"], rec["n_hottest"])
