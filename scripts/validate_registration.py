"""Rule adapter (synthetic cohorts only): estimated affines vs the simulated poses, over brain voxels."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

import numpy as np  # noqa: E402

from datxai.atlas import load_bundle  # noqa: E402
from datxai.grid import Grid  # noqa: E402
from datxai.io import write_tsv  # noqa: E402
from datxai.register.qc import pose_from_truth, registration_errors  # noqa: E402

sm = snakemake  # noqa: F821
logger = setup_logging(sm)
grid = Grid.from_config(sm.params.grid)
brain = load_bundle(sm.input.atlas, grid=grid).brain_mask
points = grid.coords_mm()[:, brain].T
estimated, poses, flags = {}, {}, {}
for subject, a_path, t_path in zip(sm.params.subjects, sm.input.affines, sm.input.truths):
    with open(a_path) as fh:
        a = json.load(fh)
    with open(t_path) as fh:
        poses[subject] = pose_from_truth(json.load(fh), source=t_path)
    estimated[subject] = np.asarray(a.get("estimated_matrix") or a["matrix"], dtype=float)
    flags[subject] = ",".join(a.get("flags", [])) or "none"
table = registration_errors(estimated, poses, points)
table["flags"] = table["subject"].map(flags)
write_tsv(table, sm.output.table)
logger.info("mean displacement over %d brain voxels: median %.2f mm, max %.2f mm (n = %d)", len(points),
            table["mean_displacement_mm"].median(), table["mean_displacement_mm"].max(), len(table))
