"""What a cluster means, from the synthetic truth (issue 18): planted effect, striatal spill-over or spurious.

For a synthetic cohort the noise-free activity of every subject is known. The
group difference (reduced - normal) that a cluster shows in the scaled images
can then be split into what the truth puts there:

1. Each subject's noise-free activity is rebuilt twice on the analysis grid,
   **with** its planted extrastriatal reductions and **without** them
   (everything else, the striatal loss included, unchanged; the simulator's own
   :func:`datxai.simulate.cohort.regional_binding` and phantom functions), scaled
   by its reference region as the chain scales the images
   (:func:`datxai.preprocess.scale.scale_image`) and mirrored as the chain mirrored
   that subject (``quant/sbr.tsv``'s ``mirrored``).
2. The imaging chain's resolution (camera, reconstruction, registration,
   resampling) is one isotropic Gaussian whose FWHM is **fitted** to the data: the
   FWHM at which the blurred mean truth image of the normal training subjects
   best matches (least squares, with a gain) their mean scaled image. The chain
   is linear up to the per-subject scaling, so the blurred group-mean difference
   is what the chain leaves of the truth's difference.
3. Per cluster: ``d_observed`` (mean scaled uptake of the cluster, reduced minus
   normal), ``d_truth`` (the same of the blurred truth with the planted effects)
   and ``d_spillover`` (without them: what the striatal loss alone puts there);
   ``d_planted = d_truth - d_spillover``.

Classification (constants below): **spurious** when the truth explains less than
:data:`MIN_EXPLAINED` of the observed difference or has the other sign, or when the
truth's difference is smaller than the observed difference's standard error (the
truth puts nothing there that this sample could show: noise, or an artefact of the
chain the model does not hold); otherwise **spill-over**
when the striatal loss alone gives at least :data:`SPILLOVER_SHARE` of the
truth's difference, else **planted**.

Detectability of each planted (region, side): the share of the region inside the
striatum box (nostriatum cannot see a region that lies in it; striatum sees only
the box) and the effect the chain leaves of it (``d_planted`` over the region's
voxels, as a standardised difference with the observed between-subject SD, and
the |t| it would give at the subset's group sizes), so that a miss reads as
``not visible in this setting``, ``too weak at this n / resolution`` (expected
|t| below the comparator's FWE threshold) or ``missed by the method``.
"""

from __future__ import annotations

import logging

import numpy as np

from ..grid import Grid

logger = logging.getLogger(__name__)

MIN_EXPLAINED = 0.25  # the truth must give at least this share of the observed difference, with its sign
SPILLOVER_SHARE = 0.5  # spill-over when the striatal loss alone gives at least this share of the truth's difference
CLASS_COLUMNS = ("method", "cluster", "label", "side", "volume_ml", "d_observed", "se_observed", "d_truth",
                 "d_spillover", "d_planted", "spillover_share", "explained", "class")


def truth_images(rows, sim: dict, anat, grid: Grid, reference_mask: np.ndarray, percentile: float,
                 mirrored: dict, planted: bool = True) -> np.ndarray:
    """Noise-free scaled (and mirrored) truth images ``(N, *grid.shape)`` of the cohort-truth ``rows``.

    ``planted=False`` removes each subject's planted extrastriatal reductions and nothing else.
    """
    from ..preprocess.mirror import mirror
    from ..preprocess.scale import scale_image
    from ..simulate import phantom
    from ..simulate.cohort import SIDES, planted_effects, regional_binding

    nrm, dis = sim["normal"], sim["disease"]
    out = np.empty((len(rows), *grid.shape), np.float32)
    for i, row in enumerate(rows):
        regional = regional_binding(row, sim)
        if not planted:
            for p in planted_effects(row, sim):  # undo the last step of regional_binding
                if p["reduction"] < 1:
                    regional[(p["region"], p["side"])] /= 1 - p["reduction"]
        loss = {s: row[f"putamen_loss_{s}"] for s in SIDES} if row["true_class"] == "reduced" else None
        binding = phantom.binding_map(anat, regional, loss, dis["posterior_gradient"],
                                      nrm["regional_binding"].get("cortex_gm", 0.0))
        activity = phantom.activity_map(anat, binding, nrm.get("shell_uptake", 0.3))
        scaled, _ = scale_image(phantom.to_analysis_grid(activity, anat.grid, grid), reference_mask, percentile)
        out[i] = mirror(scaled) if mirrored[row["subject"]] else scaled
    return out


def blur(volume: np.ndarray, fwhm_mm: float, voxel_mm: float) -> np.ndarray:
    """Isotropic Gaussian of ``fwhm_mm`` (0 = none), zero outside the grid."""
    from scipy import ndimage

    if fwhm_mm <= 0:
        return np.asarray(volume, np.float64)
    sigma = fwhm_mm / (2 * np.sqrt(2 * np.log(2))) / voxel_mm
    return ndimage.gaussian_filter(np.asarray(volume, np.float64), sigma, mode="constant")


def fit_resolution(truth_mean: np.ndarray, observed_mean: np.ndarray, mask: np.ndarray, voxel_mm: float,
                   fwhm_grid_mm=None) -> tuple[float, float, float]:
    """The FWHM (mm) at which ``gain * blur(truth_mean)`` best fits ``observed_mean`` inside ``mask``.

    A grid search (default 0-30 mm by 0.5 mm) with the least-squares gain at each FWHM.
    Returns ``(fwhm_mm, gain, r)``: ``r`` the correlation of the fit inside the mask.
    """
    grid_mm = np.arange(0.0, 30.01, 0.5) if fwhm_grid_mm is None else np.asarray(fwhm_grid_mm, float)
    y = np.asarray(observed_mean, np.float64)[mask]
    best = None
    for f in grid_mm:
        x = blur(truth_mean, f, voxel_mm)[mask]
        gain = float(x @ y / (x @ x)) if x @ x > 0 else 0.0
        err = float(((y - gain * x) ** 2).sum())
        if best is None or err < best[0]:
            best = (err, float(f), gain, float(np.corrcoef(x, y)[0, 1]))
    _, f, gain, r = best
    if f in (grid_mm[0], grid_mm[-1]) and len(grid_mm) > 1:
        logger.warning("the fitted resolution %.1f mm lies on the edge of the search (%.1f-%.1f mm)", f, grid_mm[0],
                       grid_mm[-1])
    return f, gain, r


def group_difference(images: np.ndarray, reduced: np.ndarray) -> np.ndarray:
    """Mean image of the reduced group minus that of the normal group."""
    reduced = np.asarray(reduced, bool)
    return np.asarray(images[reduced], np.float64).mean(axis=0) - np.asarray(images[~reduced], np.float64).mean(axis=0)


def classify(d_observed: float, d_truth: float, d_spillover: float, se_observed: float = 0.0
             ) -> tuple[str, float, float]:
    """``(class, spillover_share, explained)`` of one cluster (see the module docstring)."""
    explained = d_truth / d_observed if d_observed != 0 else float("nan")
    share = d_spillover / d_truth if d_truth != 0 else float("nan")
    if not np.isfinite(explained) or explained < MIN_EXPLAINED or abs(d_truth) < se_observed:
        return "spurious", share, explained
    return ("spill-over" if share >= SPILLOVER_SHARE else "planted"), share, explained


def standard_error(values: np.ndarray, reduced: np.ndarray) -> float:
    """Standard error of the difference of group means (pooled SD)."""
    values, reduced = np.asarray(values, float), np.asarray(reduced, bool)
    n1, n2 = int(reduced.sum()), int((~reduced).sum())
    pooled = np.sqrt(((n1 - 1) * values[reduced].var(ddof=1) + (n2 - 1) * values[~reduced].var(ddof=1)) / (n1 + n2 - 2))
    return float(pooled * np.sqrt(1.0 / n1 + 1.0 / n2))


def classify_clusters(tables: dict, label_images: dict, diff_observed: np.ndarray, diff_truth: np.ndarray,
                      diff_spillover: np.ndarray, observed: np.ndarray | None = None, reduced: np.ndarray | None = None):
    """The class of every cluster of every method (``{method: table}``, matching label images), from the three
    (blurred, for the truth) group-difference images; ``observed`` ``(N, ...)`` images with their ``reduced``
    flags give each cluster's standard error (0 without them). Returns a DataFrame with :data:`CLASS_COLUMNS`."""
    import pandas as pd

    rows = []
    for method, table in tables.items():
        lab = np.asarray(label_images[method])
        for r in table.itertuples():
            m = lab == int(r.cluster)
            if not m.any():
                raise ValueError(f"{method}: cluster {r.cluster} of the table is not in its label image")
            do, dt, ds = (float(d[m].mean()) for d in (diff_observed, diff_truth, diff_spillover))
            se = 0.0 if observed is None else standard_error(np.asarray(observed)[:, m].mean(axis=1), reduced)
            cls, share, explained = classify(do, dt, ds, se)
            rows.append({"method": method, "cluster": int(r.cluster), "label": r.label, "side": r.side,
                         "volume_ml": r.volume_ml, "d_observed": do, "se_observed": se, "d_truth": dt,
                         "d_spillover": ds,
                         "d_planted": dt - ds, "spillover_share": share, "explained": explained, "class": cls})
    return pd.DataFrame(rows, columns=list(CLASS_COLUMNS))


def expected_t(d: float, sd: float, n_reduced: int, n_normal: int) -> float:
    """|t| of a two-sample comparison with mean difference ``d`` and common SD ``sd`` at the given group sizes."""
    if sd <= 0:
        return float("inf") if d else 0.0
    return abs(d) / (sd * np.sqrt(1.0 / n_reduced + 1.0 / n_normal))


DETECT_COLUMNS = ("method", "planted_region", "side", "frac_in_box", "visible", "d_planted", "sd_observed",
                  "expected_t", "t_threshold", "hit", "status")


def visible_in(method: str, frac_in_box: float) -> bool:
    """Whether ``method`` can see a region with ``frac_in_box`` of its voxels in the striatum box: ``full`` sees
    everything, ``striatum`` only the box, ``nostriatum`` and the voxelwise comparator (clusters outside the
    box) only the rest (the majority of the region decides)."""
    if method.endswith("striatum") and not method.endswith("nostriatum"):
        return frac_in_box >= 0.5
    if method.endswith("full"):
        return True
    return frac_in_box < 0.5


def detectability(planted, hits: dict, region_masks: dict, box: np.ndarray, diff_planted: np.ndarray,
                  subject_means: dict, design: dict):
    """Per method and planted ``(region, side, n)``: visible?, the effect the chain leaves, found? and why not.

    ``region_masks[(region, side)]``: the region on the grid (I = x < 0 after mirroring);
    ``diff_planted``: the blurred truth difference of the planted effects alone; ``subject_means[(region,
    side)]``: ``(values, reduced)`` of the observed mean scaled uptake per subject (for the pooled SD);
    ``hits[(method, region, side)]``: whether the method's clusters hit it (the validation table);
    ``design[method] = (n_reduced, n_normal, t_threshold)``: the group sizes the method's finding rests on and the
    |t| an effect needs to be detectable (the voxelwise comparator's FWE threshold on that subset: a yardstick for
    the relevance clusters too, which have no test statistic of their own).
    """
    import pandas as pd

    rows = []
    for region, side, _n in planted:
        m = np.asarray(region_masks[(region, side)], bool)
        frac = float(np.asarray(box, bool)[m].mean()) if m.any() else float("nan")
        d = float(diff_planted[m].mean()) if m.any() else float("nan")
        vals, red = subject_means[(region, side)]
        vals, red = np.asarray(vals, float), np.asarray(red, bool)
        pooled = np.sqrt(((red.sum() - 1) * vals[red].var(ddof=1) + ((~red).sum() - 1) * vals[~red].var(ddof=1))
                         / (len(vals) - 2))
        for method, (n_reduced, n_normal, t_threshold) in design.items():
            t = expected_t(d, float(pooled), n_reduced, n_normal)
            vis = visible_in(method, frac)
            hit = bool(hits.get((method, region, side), False))
            status = ("found" if hit else "not visible in this setting" if not vis
                      else "too weak at this n / resolution" if t < t_threshold else "missed by the method")
            rows.append({"method": method, "planted_region": region, "side": side, "frac_in_box": frac,
                         "visible": vis, "d_planted": d, "sd_observed": float(pooled), "expected_t": t,
                         "t_threshold": t_threshold, "hit": hit, "status": status})
    return pd.DataFrame(rows, columns=list(DETECT_COLUMNS))


def recovery(detect) -> "object":
    """Per method: planted region-sides, visible, detectable (visible and expected |t| >= threshold), found,
    and recovery = found among the detectable."""
    import pandas as pd

    cols = ["method", "planted", "visible", "detectable", "found", "found_of_detectable", "recovery"]
    out = []
    for method, g in detect.groupby("method", sort=False):
        detectable = g["visible"] & (g["expected_t"] >= g["t_threshold"])
        found = g["hit"].astype(bool)
        out.append({"method": method, "planted": len(g), "visible": int(g["visible"].sum()),
                    "detectable": int(detectable.sum()), "found": int(found.sum()),
                    "found_of_detectable": int((found & detectable).sum()),
                    "recovery": float((found & detectable).sum() / detectable.sum()) if detectable.any() else np.nan})
    return pd.DataFrame(out, columns=cols)
