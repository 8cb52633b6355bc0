"""Rule adapter: montage of normalised images with the template contour."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

from datxai.grid import Grid, resample_to_grid  # noqa: E402
from datxai.io import load_nifti, read_tsv  # noqa: E402
from datxai.register.qc import montage_subjects, normalize_montage  # noqa: E402

sm = snakemake  # noqa: F821
logger = setup_logging(sm)
grid = Grid.from_config(sm.params.grid)
tpl, tpl_aff = load_nifti(sm.input.template)
if tpl.shape != grid.shape or abs(tpl_aff - grid.affine).max() > 1e-4:
    tpl = resample_to_grid(tpl, tpl_aff, grid)  # a user template on another grid
table = read_tsv(sm.input.registration, required=["subject", "flags"])
if list(table["subject"]) != list(sm.params.subjects):
    raise ValueError(f"{sm.input.registration}: its subjects are not the cohort's ({len(table)} rows, "
                     f"{len(sm.params.subjects)} subjects); rerun collect_registration")
flagged = list(table.loc[table["flags"].fillna("none").astype(str) != "none", "subject"])
image_of = dict(zip(sm.params.subjects, sm.input.images))
shown = montage_subjects(sm.params.subjects, sm.params.n_show, flagged)
images = [(s, load_nifti(image_of[s], shape=grid.shape)[0]) for s in shown]
normalize_montage(tpl, images, grid, sm.output.montage, flagged=flagged)
logger.info("montage of %d subjects (%d flagged in the cohort)", len(shown), len(flagged))
