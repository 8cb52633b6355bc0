"""Rule adapter: scale, quantify (SBR by hottest voxels) and mirror a batch of subjects' MNI-space images."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import run_batch, setup_logging  # noqa: E402

from datxai.atlas import load_bundle  # noqa: E402
from datxai.grid import Grid  # noqa: E402
from datxai.preprocess.quality import process_file  # noqa: E402

sm = snakemake  # noqa: F821
logger = setup_logging(sm)
atlas = load_bundle(sm.input.atlas, grid=Grid.from_config(sm.params.grid))


def scale(i, subject):
    rec = process_file(sm.input.image[i], atlas, sm.output.scaled[i], sm.output.sbr[i], subject,
                       sm.params.percentile, sm.params.margin_mm, sm.params.hottest_ml)
    logger.info("%s: reference %.4g, putamen SBR I %.3f C %.3f, caudate I %.3f C %.3f, mirrored %s (%d hottest voxels)",
                subject, rec["reference_p75"], rec["sbr_putamen_ipsi"], rec["sbr_putamen_contra"],
                rec["sbr_caudate_ipsi"], rec["sbr_caudate_contra"], rec["mirrored"], rec["n_hottest"])


run_batch(sm, logger, scale)
