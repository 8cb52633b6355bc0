"""File-level entries of the group stage, shared by the rule adapters and ``datxai group``.

Each reads its inputs (validated, files named in errors), calls the science in
:mod:`.heat`, :mod:`.clusters`, :mod:`.companion`, :mod:`.figures` and writes
its outputs atomically.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from ..checks import check_choice
from ..grid import Grid
from ..io import InputError, load_nifti, read_tsv, save_nifti, write_json, write_tsv

logger = logging.getLogger(__name__)

RELEVANCE_COLUMNS = ["subject", "label", "predicted", "outcome"]


def read_relevance(folder, grid: Grid):
    """``relevance.tsv`` of a relevance folder and a loader ``subject -> map`` (checked against ``grid``)."""
    folder = Path(folder)
    table = read_tsv(folder / "relevance.tsv", required=RELEVANCE_COLUMNS)

    def load(subject: str) -> np.ndarray:
        data, aff = load_nifti(folder / f"{subject}_relevance.nii.gz", shape=grid.shape, allow_zero=False)
        if not np.allclose(aff, grid.affine, atol=1e-3):
            raise InputError(f"{folder / f'{subject}_relevance.nii.gz'}: affine differs from the analysis grid")
        return data

    return table, load


def run_group_relevance(relevance_dir, grid: Grid, out_heat, out_tp, out_tn, out_json, setting: str = "") -> dict:
    """Mean TP, mean TN, heat = TP - TN of one setting -> NIfTI (+ counts JSON)."""
    from .heat import group_maps

    table, load = read_relevance(relevance_dir, grid)
    g = group_maps(table, load, setting)
    for key, path in (("heat", out_heat), ("mean_tp", out_tp), ("mean_tn", out_tn)):
        save_nifti(g[key], grid.affine, path, header_extra={"mni": True})
    write_json({"setting": setting, "n_tp": g["n_tp"], "n_tn": g["n_tn"],
                "basis_tp": g["basis_tp"], "basis_tn": g["basis_tn"],
                "outcomes": {k: int(v) for k, v in table["outcome"].value_counts().items()},
                "heat_min": float(g["heat"].min()), "heat_max": float(g["heat"].max())}, out_json)
    return g


def cluster_region(setting: str) -> str:
    """Where clusters may grow: ``outside_box`` for ``nostriatum`` (its box holds no image), else ``brain``."""
    return "outside_box" if setting == "nostriatum" else "brain"


def run_find_clusters(heat_path, atlas, grid: Grid, box_mm, out_nii, out_tsv, percentile: float = 95.0,
                      connectivity: int = 26, min_cluster_ml: float = 1.0, region: str = "outside_box",
                      sign: str = "positive"):
    """Threshold (from the brain outside the striatum box), clusters inside ``region`` (``brain`` |
    ``outside_box``, see :func:`cluster_region`), atlas labels -> clusters.nii.gz (int16) + clusters.tsv.
    ``sign``: which heat forms clusters (:data:`datxai.group.clusters.HEAT_SIGNS`)."""
    from ..atlas import region_names
    from ..dataset import box_mask
    from .clusters import allowed_mask, describe_clusters, find_clusters

    heat, _ = load_nifti(heat_path, shape=grid.shape, allow_zero=True)
    allowed = allowed_mask(atlas.brain_mask, box_mask(grid, box_mm))
    check_choice("cluster region", region, ("brain", "outside_box"))
    where = np.asarray(atlas.brain_mask, bool) if region == "brain" else allowed
    labels, thr = find_clusters(heat, allowed, grid, percentile, connectivity, min_cluster_ml, cluster_mask=where,
                                sign=sign)
    table = describe_clusters(labels, heat, grid, atlas.label_image, region_names(), thr)
    save_nifti(labels, grid.affine, out_nii, dtype=np.int16, header_extra={"mni": True})
    write_tsv(table, out_tsv)
    for r in table.itertuples():
        logger.info("cluster %d: %.2f ml, %s (%s), peak %.3g at (%.0f, %.0f, %.0f) mm", r.cluster, r.volume_ml,
                    r.label, r.side, r.peak_heat, r.peak_x, r.peak_y, r.peak_z)
    return table


def run_companion(relevance_dir, mean_tn_path, mean_tp_path, atlas, grid: Grid, out_table, out_summary,
                  out_histogram, out_panel, *, images_npy, table_tsv, setting: str = "full", box_mm=None,
                  margin_mm: float = 6.0, hottest_ml: float = 4.0, select_by: str = "image"):
    """S2: putamen relevance per case, sign classifier, inconsistent maps, histogram and misclassified panel.

    The putamen relevance of a case is the mean of its map over the hottest voxels of the large
    ipsilateral putamen ROI (``quantify.putamen_margin_mm``, ``quantify.hottest_volume_ml``),
    the voxels chosen by ``select_by`` (``group.putamen_select``: the test image's values, as the
    SBR analysis does, or the relevance): :func:`.companion.putamen_relevance`. ``images_npy`` /
    ``table_tsv`` are the setting's test images (the rows of the maps' table).
    """
    import pandas as pd

    from ..dataset import to_full
    from ..model.train import load_dataset
    from ..preprocess.sbr import n_hottest
    from .companion import (inconsistent_maps, plot_histogram, plot_misclassified, putamen_relevance, putamen_roi,
                            sign_classification)
    from .figures import striatum_z

    table, load = read_relevance(relevance_dir, grid)
    ds = load_dataset(images_npy, table_tsv)
    rows = {s: k for k, s in enumerate(ds.subjects)}
    missing = [s for s in table["subject"] if s not in rows]
    if missing:
        raise InputError(f"{table_tsv}: no test image for mapped subject(s) {missing[:5]}")
    roi, n = putamen_roi(atlas, margin_mm), n_hottest(hottest_ml, grid.voxel_ml)
    table["putamen_relevance"] = [
        putamen_relevance(load(s), to_full(np.asarray(ds.x[rows[s]]), setting, grid, box_mm), roi, n, select_by)
        for s in table["subject"]]
    mis = inconsistent_maps(table)
    out = table[["subject", "label", "predicted", "outcome", "putamen_relevance"]].copy()
    out["sign_predicted"] = np.where(out["putamen_relevance"] > 0, "reduced", "normal")
    out["inconsistent"] = out["subject"].map(mis.set_index("subject")["inconsistent"]).fillna("")
    write_tsv(out, out_table)
    metrics = sign_classification(table)
    rows = [{"classifier": k, **v} for k, v in metrics.items()]
    n_fn, n_fp = int((mis.outcome == "FN").sum()), int((mis.outcome == "FP").sum())
    summary = pd.DataFrame(rows)
    summary["n_misclassified"] = len(mis)
    summary["n_inconsistent"] = int((mis.inconsistent == "yes").sum())
    summary["n_inconsistent_fn"] = int(((mis.inconsistent == "yes") & (mis.outcome == "FN")).sum())
    summary["n_fn"], summary["n_fp"] = n_fn, n_fp
    write_tsv(summary, out_summary)
    logger.info("putamen-sign classifier: accuracy %.3f, sensitivity %.3f, specificity %.3f (n=%d); "
                "%d of %d misclassified maps inconsistent (%d of %d FN)", metrics["putamen_sign"]["accuracy"],
                metrics["putamen_sign"]["sensitivity"], metrics["putamen_sign"]["specificity"], len(table),
                summary["n_inconsistent"].iloc[0], len(mis), summary["n_inconsistent_fn"].iloc[0], n_fn)
    plot_histogram(table, out_histogram)
    mean_tn, _ = load_nifti(mean_tn_path, shape=grid.shape, allow_zero=True)
    mean_tp, _ = load_nifti(mean_tp_path, shape=grid.shape, allow_zero=True)
    maps = {s: load(s) for s in mis["subject"]}
    plot_misclassified(maps, dict(zip(mis.subject, mis.outcome)), mean_tn, mean_tp, grid, striatum_z(atlas),
                       out_panel, putamen=dict(zip(mis.subject, mis.putamen_relevance)))
    return out, summary


def run_figures(group: dict, clusters: dict, atlas, grid: Grid, box_mm, percentile: float, out_fig1, out_fig2,
                out_fig3, sign: str = "positive"):
    """Figs 1-3. ``group``: setting -> ``{heat, mean_tp, mean_tn, json}`` paths; ``clusters``: setting -> nii path."""
    from ..dataset import box_mask
    from .clusters import allowed_mask, heat_threshold
    from .figures import plot_group_maps, plot_heat_striatum, plot_thresholded_heat, striatum_z

    maps = {}
    for s, paths in group.items():
        g = {k: load_nifti(paths[k], shape=grid.shape, allow_zero=True)[0] for k in ("heat", "mean_tp", "mean_tn")}
        with open(paths["json"]) as fh:
            counts = json.load(fh)
        g.update(n_tp=counts["n_tp"], n_tn=counts["n_tn"])
        maps[s] = g
    z = striatum_z(atlas)
    plot_group_maps(maps, grid, z, out_fig1)
    plot_heat_striatum({s: g["heat"] for s, g in maps.items()}, grid, z, out_fig2, t1=atlas.t1)
    allowed = allowed_mask(atlas.brain_mask, box_mask(grid, box_mm))
    cl = {s: load_nifti(p, shape=grid.shape, allow_zero=True)[0].astype(int) for s, p in clusters.items()}
    thr = {s: heat_threshold(maps[s]["heat"], allowed, percentile, sign) for s in clusters}
    plot_thresholded_heat({s: maps[s]["heat"] for s in clusters}, cl, thr, grid, atlas.t1, box_mm, out_fig3)


def run_validate_clusters(cluster_tables: dict, truth_jsons, out_tsv, min_share: float = 0.10):
    """Synthetic cohort only: planted regions vs each setting's clusters -> one TSV with a ``setting`` column."""
    import pandas as pd

    from .clusters import compare_with_truth, planted_from_truth

    records = []
    for p in truth_jsons:
        try:
            with open(p) as fh:
                records.append(json.load(fh))
        except (OSError, ValueError) as exc:
            raise InputError(f"{p}: not a readable truth JSON ({exc})") from exc
    planted = planted_from_truth(records)
    if not planted:
        logger.warning("the synthetic truth holds no planted extrastriatal effect")
    parts = []
    for setting, path in cluster_tables.items():
        table = read_tsv(path, required=["cluster", "labels", "peak_heat"])
        v = compare_with_truth(table, planted, min_share)
        v.insert(0, "setting", setting)
        parts.append(v)
        logger.info("%s: %d of %d planted region-sides hit, %d spurious clusters", setting, (v.hit == "yes").sum(),
                    len(planted), (v.hit == "spurious").sum())
    out = pd.concat(parts, ignore_index=True)
    write_tsv(out, out_tsv)
    return out


def run_voxelwise(stack_npy, stack_sidecar, participants_tsv, split_tsv, subset: str, atlas, grid: Grid, box_mm,
                  out_t, out_nii, out_tsv, out_json, n_perm: int = 1000, alpha: float = 0.05, seed: int = 0,
                  connectivity: int = 26, min_cluster_ml: float = 1.0, n_jobs: int = 1):
    """The voxelwise comparator for one ``subset``: t map (NIfTI), its FWE clusters (NIfTI + table), summary JSON.

    Images: the stack of scaled, mirrored images; groups: the validated participants sheet's
    ``label``; subjects: ``split.tsv``'s rows of ``subset``. See :mod:`.voxelwise`.
    """
    from ..atlas import region_names
    from ..dataset import ImageStack, box_mask
    from ..participants import load_participants
    from .clusters import allowed_mask, describe_clusters
    from .voxelwise import comparator_clusters, voxelwise_ttest

    stack = ImageStack(stack_npy, stack_sidecar)
    stack.check_grid(grid.shape, grid.affine)
    split = read_tsv(split_tsv, required=["subject", "subset"])
    subjects = [str(s) for s in split.loc[split["subset"] == subset, "subject"]]
    if not subjects:
        raise InputError(f"{split_tsv}: no subject in subset {subset!r}")
    missing = [s for s in subjects if s not in stack]
    if missing:
        raise InputError(f"{stack_sidecar}: no scaled image of {len(missing)} {subset} subject(s): {missing[:5]}")
    sheet = load_participants(participants_tsv).set_index("subject")
    absent = [s for s in subjects if s not in sheet.index]
    if absent:
        raise InputError(f"{participants_tsv}: no row for {len(absent)} {subset} subject(s) of {split_tsv}: {absent[:5]}")
    reduced = (sheet.loc[subjects, "label"] == "reduced").to_numpy()
    images = np.asarray(stack.array[stack.rows(subjects)], np.float32)
    brain = np.asarray(atlas.brain_mask, bool)
    res = voxelwise_ttest(images, reduced, brain, n_perm=n_perm, seed=seed, alpha=alpha, n_jobs=n_jobs)
    outside = allowed_mask(brain, box_mask(grid, box_mm))
    labels = comparator_clusters(res, outside, grid, connectivity, min_cluster_ml)
    t = np.nan_to_num(res.t, nan=0.0).astype(np.float32)
    table = describe_clusters(labels, t, grid, atlas.label_image, region_names(), res.threshold)
    save_nifti(t, grid.affine, out_t, header_extra={"mni": True})
    save_nifti(labels, grid.affine, out_nii, dtype=np.int16, header_extra={"mni": True})
    write_tsv(table, out_tsv)
    summary = {"subset": subset, **res.summary(), "seed": int(seed), "n_clusters": int(len(table)),
               "clusters_in": "brain outside the striatum box", "family": "brain mask (max-T over all brain voxels)",
               "statistic": "two-sample t (OLS, pooled variance), reduced - normal"}
    write_json(summary, out_json)
    for r in table.itertuples():
        logger.info("voxelwise %s cluster %d: %.2f ml, %s (%s), peak t %.2f at (%.0f, %.0f, %.0f) mm", subset,
                    r.cluster, r.volume_ml, r.label, r.side, r.peak_heat, r.peak_x, r.peak_y, r.peak_z)
    return table, res


def run_compare_methods(lrp: dict, voxelwise: dict, atlas, grid: Grid, box_mm, out_long, out_wide, out_fig):
    """The relevance clusters (``{setting: (nifti, tsv)}``) and the voxelwise comparator's (``{subset: (nifti,
    tsv, tmap, summary json)}``) side by side: one long table with distances to the striatum and the box, one region x method
    table, and the comparator's thresholded t maps (the figure beside Fig 3)."""
    from ..atlas import STRIATAL_BASES
    from ..dataset import box_mask
    from .figures import plot_thresholded_heat
    from .voxelwise import methods_table, side_by_side

    tables, labels = {}, {}
    for setting, (nii, tsv) in lrp.items():
        tables[f"lrp_{setting}"] = read_tsv(tsv, required=["cluster", "label", "side", "volume_ml", "peak_heat"])
        labels[f"lrp_{setting}"], _ = load_nifti(nii, shape=grid.shape, allow_zero=True)
    tmaps, thresholds = {}, {}
    for subset, (nii, tsv, tmap, summary) in voxelwise.items():
        key = f"voxelwise_{subset}"
        tables[key] = read_tsv(tsv, required=["cluster", "label", "side", "volume_ml", "peak_heat", "threshold"])
        labels[key], _ = load_nifti(nii, shape=grid.shape, allow_zero=True)
        tmaps[key], _ = load_nifti(tmap, shape=grid.shape, allow_zero=True)
        try:
            with open(summary) as fh:
                thresholds[key] = float(json.load(fh)["fwe_threshold_abs_t"])
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"{summary}: not a voxelwise summary ({exc})") from exc
    striatum = np.zeros(grid.shape, bool)
    for base in STRIATAL_BASES:
        striatum |= atlas.mask(base)
    box = box_mask(grid, box_mm)
    long = methods_table(tables, {k: np.rint(v).astype(int) for k, v in labels.items()}, striatum, box, grid.voxel_mm)
    wide = side_by_side(long, methods=list(tables))
    write_tsv(long, out_long)
    write_tsv(wide, out_wide)
    plot_thresholded_heat(tmaps, {k: np.rint(labels[k]).astype(int) for k in tmaps}, thresholds, grid, atlas.t1, box_mm,
                          out_fig, colorbar_label="voxelwise t (reduced - normal), FWE clusters only")
    return long, wide


def run_truth_validation(cohort_truth_tsv, anatomy_npz, sim: dict, atlas, grid: Grid, box_mm, scale_percentile: float,
                         sbr_tsv, split_tsv, participants_tsv, stack_npy, stack_sidecar, lrp: dict, voxelwise: dict,
                         validation_tsv, out_classes, out_detect, out_recovery, out_json, subset: str = "train"):
    """Synthetic cohort only: every cluster classed planted / spill-over / spurious, every planted region's
    detectability and the recovery over what was detectable (see :mod:`.truth`), on ``subset``.

    ``lrp``: ``{setting: (clusters nifti, tsv)}``; ``voxelwise``: ``{subset: (nifti, tsv, summary json)}``.
    """
    import pandas as pd

    from ..dataset import ImageStack, box_mask
    from ..participants import load_participants
    from ..simulate.phantom import PhantomAnatomy
    from .clusters import planted_from_truth
    from .truth import (blur, classify_clusters, detectability, fit_resolution, group_difference, recovery,
                        truth_images)

    truth = read_tsv(cohort_truth_tsv, required=["subject", "true_class", "affected_side"])
    split = read_tsv(split_tsv, required=["subject", "subset"])
    subjects = [str(s) for s in split.loc[split["subset"] == subset, "subject"]]
    sheet = load_participants(participants_tsv).set_index("subject")
    sbr = read_tsv(sbr_tsv, required=["subject", "mirrored"]).set_index("subject")
    missing = [s for s in subjects if s not in set(truth["subject"]) or s not in sbr.index or s not in sheet.index]
    if missing:
        raise InputError(f"{subset} subjects without truth, SBR or participants row: {missing[:5]}")
    rows = truth.set_index("subject").loc[subjects].reset_index().to_dict("records")
    reduced = (sheet.loc[subjects, "label"] == "reduced").to_numpy()
    mirrored = {s: str(sbr.loc[s, "mirrored"]).lower() in ("true", "1", "yes") for s in subjects}
    anat = PhantomAnatomy.load(anatomy_npz)
    stack = ImageStack(stack_npy, stack_sidecar)
    stack.check_grid(grid.shape, grid.affine)
    observed = np.asarray(stack.array[stack.rows(subjects)], np.float32)
    ref = np.asarray(atlas.reference_mask, bool)
    with_planted = truth_images(rows, sim, anat, grid, ref, scale_percentile, mirrored, planted=True)
    without = with_planted.copy()
    red_idx = [i for i, row in enumerate(rows) if row["true_class"] == "reduced"]  # only they carry planted effects
    without[red_idx] = truth_images([rows[i] for i in red_idx], sim, anat, grid, ref, scale_percentile, mirrored,
                                    planted=False)
    brain = np.asarray(atlas.brain_mask, bool)
    fwhm, gain, r = fit_resolution(with_planted[~reduced].mean(axis=0), observed[~reduced].mean(axis=0), brain,
                                   grid.voxel_mm)
    logger.info("imaging chain resolution fitted to the normal %s subjects: FWHM %.1f mm (gain %.3f, r %.3f)",
                subset, fwhm, gain, r)
    d_obs = group_difference(observed, reduced)
    d_truth = gain * blur(group_difference(with_planted, reduced), fwhm, grid.voxel_mm)
    d_spill = gain * blur(group_difference(without, reduced), fwhm, grid.voxel_mm)

    tables, labels = {}, {}
    for setting, (nii, tsv) in lrp.items():
        tables[setting] = read_tsv(tsv, required=["cluster", "label", "side", "volume_ml"])
        labels[setting] = np.rint(load_nifti(nii, shape=grid.shape, allow_zero=True)[0]).astype(int)
    thresholds = {}
    for sub, (nii, tsv, summary) in voxelwise.items():
        key = f"voxelwise_{sub}"
        tables[key] = read_tsv(tsv, required=["cluster", "label", "side", "volume_ml"])
        labels[key] = np.rint(load_nifti(nii, shape=grid.shape, allow_zero=True)[0]).astype(int)
        with open(summary) as fh:
            thresholds[sub] = float(json.load(fh)["fwe_threshold_abs_t"])
    classes = classify_clusters(tables, labels, d_obs, d_truth, d_spill, observed, reduced)

    records = []
    for s in subjects:
        with open(Path(cohort_truth_tsv).parent / f"{s}_truth.json") as fh:
            records.append(json.load(fh))
    planted = planted_from_truth(records)
    masks, means = {}, {}
    for region, side, _n in planted:
        masks[(region, side)] = atlas.mask(region, "L" if side == "I" else "R")
        m = masks[(region, side)]
        means[(region, side)] = (observed[:, m].mean(axis=1) if m.any() else np.full(len(subjects), np.nan), reduced)
    validation = read_tsv(validation_tsv, required=["setting", "planted_region", "side", "hit"])
    hits = {(r.setting, r.planted_region, r.side): r.hit == "yes" for r in validation.itertuples()}
    def counts(sub):
        ids = [str(s) for s in split.loc[split["subset"] == sub, "subject"]]
        red = (sheet.loc[ids, "label"] == "reduced").to_numpy()
        return int(red.sum()), int((~red).sum())

    t_thr = thresholds.get(subset, float("nan"))
    design = {m: (*counts(subset), t_thr) for m in lrp}
    design.update({f"voxelwise_{sub}": (*counts(sub), thresholds[sub]) for sub in voxelwise})
    detect = detectability(planted, hits, masks, box_mask(grid, box_mm), d_truth - d_spill, means, design)
    rec = recovery(detect)
    write_tsv(classes, out_classes)
    write_tsv(detect, out_detect)
    write_tsv(rec, out_recovery)
    write_json({"subset": subset, "fwhm_mm": fwhm, "gain": gain, "r": r, "n_reduced": int(reduced.sum()),
                "n_normal": int((~reduced).sum()), "t_threshold": t_thr,
                "rules": {"spurious": "truth explains < 25 % of the observed difference or has the other sign, or "
                                      "the truth's difference is below the observed difference's standard error",
                          "spill-over": "the striatal loss alone gives >= 50 % of the truth's difference",
                          "planted": "otherwise"}}, out_json)
    for c in classes.itertuples():
        logger.info("%s cluster %d %s %s: observed %.4f, truth %.4f (spill-over %.4f, planted %.4f) -> %s",
                    c.method, c.cluster, c.label, c.side, c.d_observed, c.d_truth, c.d_spillover, c.d_planted,
                    c[-1])
    return classes, detect, rec


def run_cluster_stability(cluster_niftis: list, heat_niftis: list, atlas, grid: Grid, box_mm, setting: str,
                          out_dice, out_map, out_nii, out_tsv, percentile: float = 95.0, connectivity: int = 26,
                          min_cluster_ml: float = 1.0, sign: str = "positive"):
    """Seed stability of one setting's clusters over its training repeats (index = repeat, 0 = the study's):
    pairwise Dice (TSV), the voxel stability map (NIfTI) and the clusters of the mean heat map with their mean
    stability (NIfTI + TSV). See :mod:`.stability`."""
    from ..atlas import region_names
    from ..dataset import box_mask
    from .clusters import allowed_mask, describe_clusters, find_clusters
    from .stability import cluster_stability, pairwise_dice, stability_map

    if len(cluster_niftis) != len(heat_niftis) or len(cluster_niftis) < 2:
        raise ValueError(f"{setting}: stability needs the clusters and heat maps of >= 2 repeats, got "
                         f"{len(cluster_niftis)} and {len(heat_niftis)}")
    masks = {r: load_nifti(p, shape=grid.shape, allow_zero=True)[0] > 0 for r, p in enumerate(cluster_niftis)}
    heats = [load_nifti(p, shape=grid.shape, allow_zero=True)[0] for p in heat_niftis]
    dice = pairwise_dice(masks)
    dice.insert(0, "setting", setting)
    stab = stability_map(list(masks.values()))
    mean_heat = np.mean(heats, axis=0)
    allowed = allowed_mask(atlas.brain_mask, box_mask(grid, box_mm))
    where = np.asarray(atlas.brain_mask, bool) if cluster_region(setting) == "brain" else allowed
    labels, thr = find_clusters(mean_heat, allowed, grid, percentile, connectivity, min_cluster_ml, cluster_mask=where,
                                sign=sign)
    table = describe_clusters(labels, mean_heat, grid, atlas.label_image, region_names(), thr)
    per = cluster_stability(labels, stab)
    table.insert(1, "stability", [per.get(int(c), np.nan) for c in table["cluster"]])
    table.insert(0, "setting", setting)
    write_tsv(dice, out_dice)
    save_nifti(stab, grid.affine, out_map, header_extra={"mni": True})
    save_nifti(labels, grid.affine, out_nii, dtype=np.int16, header_extra={"mni": True})
    write_tsv(table, out_tsv)
    logger.info("%s: %d repeats, cluster Dice between repeats %s; %d clusters of the mean heat, stability %s",
                setting, len(masks), ", ".join(f"{d:.2f}" for d in dice["dice"]), len(table),
                ", ".join(f"{v:.2f}" for v in table["stability"]))
    return dice, table
