"""Rule compute_relevance: LRP maps (zennit composite) of one setting's test cases, on the full MNI grid."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

logger = setup_logging(snakemake)  # noqa: F821

from datxai.explain.maps import run_compute_relevance  # noqa: E402
from datxai.grid import Grid  # noqa: E402
from datxai.numerics import pin_cpu_numerics  # noqa: E402

sm = snakemake  # noqa: F821
pin_cpu_numerics(**sm.params.numerics)  # before any torch computation
grid = Grid.from_config(sm.params.grid)
run_compute_relevance(
    sm.input.model, sm.input.images, sm.input.table, sm.input.predictions, sm.output.maps, sm.wildcards.setting,
    grid, sm.params.box_mm, explain=sm.params.explain, batch_size=sm.config["explain"]["batch_size"],
    device=sm.params.device,
)
