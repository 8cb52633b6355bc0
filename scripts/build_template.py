"""Rule adapter: the FP-CIT template from the MNI anchor (or the atlas seed) and a label-balanced subset of the cohort."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import setup_logging  # noqa: E402

import dataclasses  # noqa: E402
import json  # noqa: E402

import pandas as pd  # noqa: E402

from datxai import mni_anchor  # noqa: E402

from datxai.atlas import load_bundle  # noqa: E402
from datxai.config import derive_seed  # noqa: E402
from datxai.grid import Grid  # noqa: E402
from datxai.io import load_nifti, save_nifti, write_json, write_tsv  # noqa: E402
from datxai.participants import load_participants  # noqa: E402
from datxai.register.template import build_template, seed_template, select_template_subjects  # noqa: E402

sm = snakemake  # noqa: F821
logger = setup_logging(sm)
cfg = sm.params.normalize
grid = Grid.from_config(sm.params.grid)
atlas = load_bundle(sm.input.atlas, grid=grid)

chosen = select_template_subjects(load_participants(sm.input.participants), cfg["template_subjects"],
                                  derive_seed(sm.params.seed, "normalize", "template"))
if list(chosen) != list(sm.params.subjects):
    raise ValueError(f"{sm.input.participants}: the template subjects drawn from this sheet ({', '.join(chosen)}) "
                     f"differ from those the workflow chose when it built the DAG ({', '.join(sm.params.subjects)}); "
                     "was the sheet changed during the run?")
path_of = dict(zip(sm.params.subjects, sm.input.images))
logger.info("template subjects (%d): %s", len(chosen), ", ".join(chosen))

seed = seed_template(atlas)
estimate = dict(sampling_mm=cfg["sampling_mm"], regularization=cfg["regularization"], max_iterations=cfg["max_iterations"])
space = {"template_space": cfg["template_space"]}
if cfg["template_space"] == "anchor":  # the seed as this study's camera and reconstruction see it (datxai.mni_anchor)
    anchor = sm.params.anchor
    sidecar = None
    if sm.input.sidecar:
        with open(sm.input.sidecar[0]) as fh:
            sidecar = json.load(fh)
    camera = mni_anchor.anchor_camera(anchor["camera"], sidecar)
    volume, affine = mni_anchor.chain_anchor(sm.params.grid, anchor["phantom_voxel_mm"], camera, anchor["reconstruct"])
    space["camera"] = {**dataclasses.asdict(camera), "geometry_from": "reconstruction sidecar" if sidecar else "config"}
    space["chain_bias"] = mni_anchor.chain_bias(grid, volume, affine, seed, atlas.brain_mask,
                                                fwhm_mm=cfg["smooth_fwhm_mm"], **estimate)
    logger.info("the chain's bias of a fit to the atlas seed: zooms %s, %.2f mm mean displacement (corrected by the anchor)",
                [round(z, 4) for z in space["chain_bias"]["zooms"]], space["chain_bias"]["mean_displacement_mm"])
    seed = mni_anchor.anchor_on_grid(volume, affine, grid, seed, atlas.reference_mask)
images = [load_nifti(path_of[s]) for s in chosen]
template, records = build_template(
    images, seed, grid, atlas.reference_mask, iterations=cfg["template_iterations"], fwhm_mm=cfg["smooth_fwhm_mm"],
    subjects=chosen, device=cfg["device"] if cfg.get("engine", "nipype") == "torch" else None, **estimate,
)
if cfg["template_space"] == "anchor" and cfg["template_iterations"] > 0:
    template, placed = mni_anchor.place_on_anchor(template, grid, volume, affine, atlas.brain_mask, atlas.reference_mask,
                                                  fwhm_mm=cfg["smooth_fwhm_mm"], **estimate)
    space.update(placed)
table = pd.DataFrame(records, columns=["subject", "iteration", "cost", "correlation", "diverged", "flags"])
if table.empty:
    table = pd.DataFrame({"subject": chosen, "iteration": 0})
save_nifti(template, grid.affine, sm.output.template, header_extra={"mni": True})
write_tsv(table, sm.output.subjects)
write_json(space, sm.output.space)
logger.info("template written: max %.3f, %d iteration(s)", float(template.max()), cfg["template_iterations"])
