"""Rule adapter: the cohort montage (noise-free activity and a sinogram of one normal and one reduced subject)."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

from datxai.simulate.figures import plot_montage  # noqa: E402

sm = snakemake  # noqa: F821
logger = setup_logging(sm)
plot_montage(sm.input.activity, sm.input.dicom, sm.input.truth, sm.params.subjects, sm.params.grid, sm.output[0],
             labels=sm.params.labels)
