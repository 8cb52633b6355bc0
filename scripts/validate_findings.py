"""Rule validate_findings (synthetic cohort only): clusters classed planted / spill-over / spurious from the truth,
the planted regions' detectability and the recovery over what was detectable."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

from datxai.atlas import load_bundle  # noqa: E402
from datxai.grid import Grid  # noqa: E402
from datxai.group.run import run_truth_validation  # noqa: E402

logger = setup_logging(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
grid = Grid.from_config(sm.params.grid)
lrp = {s: (n, t) for s, n, t in zip(sm.params.settings, sm.input.lrp_niftis, sm.input.lrp_tables)}
vox = {s: v for s, *v in zip(sm.params.subsets, sm.input.vox_niftis, sm.input.vox_tables, sm.input.vox_summaries)}
run_truth_validation(sm.input.cohort_truth, sm.input.anatomy, sm.params.simulate, load_bundle(sm.input.atlas, grid=grid),
                     grid, sm.params.box_mm, sm.params.reference_percentile, sm.input.sbr, sm.input.split,
                     sm.input.participants, sm.input.stack, sm.input.stack_sidecar, lrp, vox, sm.input.validation,
                     sm.output.classes, sm.output.detectability, sm.output.recovery, sm.output.resolution,
                     subset="train")
