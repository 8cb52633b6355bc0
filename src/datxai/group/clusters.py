"""Extrastriatal relevance clusters of a heat map (S1), labelled with the Harvard-Oxford atlas.

1. The threshold is the ``percentile`` of the heat values inside the *allowed*
   mask: the brain except the striatum box (values inside the box never enter).
2. Supra-threshold voxels inside the *cluster* mask form clusters by
   ``connectivity`` (6 | 18 | 26 neighbours). ``sign`` says which heat counts:
   ``positive`` (S1: TP relevance above TN), ``negative`` (TN above TP: regions
   whose uptake the net reads as evidence for "normal") or ``both`` (threshold
   on |heat|; positive and negative voxels never share a cluster). The cluster mask is
   the whole brain where the setting's images hold the box content (``full``:
   S1's striatal clusters "clearly extended beyond the striatum into the insula
   region, the thalamus, and into the amygdala region") and the allowed mask
   where they do not (``nostriatum``: the box is zero in every input, relevance
   there is only spread by the flat rule); clusters smaller than
   ``min_cluster_ml`` are dropped; the rest are numbered 1..K by size
   (ties: higher peak first, i.e. larger |peak heat|).
3. Each cluster gets its size, peak (highest heat) and heat-weighted centre of
   mass in MNI mm, its side and the atlas regions it overlaps.

Laterality (after mirroring): x < 0 = ipsilateral (I), x > 0 = contralateral
(C). A voxel's side is its own x (so the unsided Brain-Stem is split too); a
cluster is ``I`` or ``C`` when at most 25 % of its voxels lie on the other
side, otherwise ``M`` (midline, both sides).
"""

from __future__ import annotations

import logging

import numpy as np

from ..checks import check_choice, check_range
from ..grid import Grid

logger = logging.getLogger(__name__)

CLUSTER_COLUMNS = ("cluster", "n_voxels", "volume_ml", "side", "frac_ipsi", "peak_x", "peak_y", "peak_z",
                   "com_x", "com_y", "com_z", "peak_heat", "mean_heat", "label", "labels", "threshold", "sign")
HEAT_SIGNS = ("positive", "negative", "both")
_STRUCT = {6: 1, 18: 2, 26: 3}
OTHER_SIDE_MAX = 0.25  # share of voxels allowed on the other side for an I/C cluster


def allowed_mask(brain_mask: np.ndarray, box_mask: np.ndarray) -> np.ndarray:
    """Brain voxels outside the striatum box (bool)."""
    allowed = np.asarray(brain_mask, bool) & ~np.asarray(box_mask, bool)
    if not allowed.any():
        raise ValueError("the brain mask minus the striatum box is empty")
    return allowed


def signed_heat(heat: np.ndarray, sign: str = "positive") -> np.ndarray:
    """The values thresholded for ``sign``: heat (positive), -heat (negative) or |heat| (both)."""
    check_choice("group.heat_sign", sign, HEAT_SIGNS)
    h = np.asarray(heat, np.float64)
    return h if sign == "positive" else -h if sign == "negative" else np.abs(h)


def heat_threshold(heat: np.ndarray, allowed: np.ndarray, percentile: float, sign: str = "positive") -> float:
    """The ``percentile`` (0-100, linear interpolation) of :func:`signed_heat` over the ``allowed`` voxels."""
    heat = signed_heat(heat, sign)
    check_range("group.percentile", percentile, 0, 100, low_inclusive=False, high_inclusive=False)
    if heat.shape != allowed.shape:
        raise ValueError(f"heat {heat.shape} and mask {allowed.shape} differ in shape")
    return float(np.percentile(np.asarray(heat, np.float64)[allowed], percentile))


def find_clusters(heat: np.ndarray, allowed: np.ndarray, grid: Grid, percentile: float = 95.0,
                  connectivity: int = 26, min_cluster_ml: float = 1.0,
                  cluster_mask: np.ndarray | None = None, sign: str = "positive") -> tuple[np.ndarray, float]:
    """Label image (int32, 0 = none, 1..K by decreasing size) and the threshold (of :func:`signed_heat`).

    The threshold comes from the ``allowed`` voxels only; clusters grow inside
    ``cluster_mask`` (default: ``allowed``).
    """
    check_choice("group.connectivity", connectivity, _STRUCT)
    if tuple(heat.shape) != tuple(grid.shape):
        raise ValueError(f"heat map of shape {heat.shape} is not on the grid {grid.shape}")
    thr = heat_threshold(heat, allowed, percentile, sign)
    where = allowed if cluster_mask is None else np.asarray(cluster_mask, bool)
    out = label_supra(heat, where & (signed_heat(heat, sign) > thr), grid, connectivity, min_cluster_ml, sign)
    logger.info("threshold %.4g (%g th percentile of %s heat outside the striatum box): %d clusters >= %g ml",
                thr, percentile, sign, int(out.max(initial=0)), min_cluster_ml)
    return out, thr


def label_supra(heat: np.ndarray, supra: np.ndarray, grid: Grid, connectivity: int = 26, min_cluster_ml: float = 1.0,
                sign: str = "positive") -> np.ndarray:
    """Connected clusters of the ``supra``-threshold voxels (int32, 0 = none, 1..K by decreasing size).

    Positive and negative ``heat`` are labelled apart (a cluster never mixes signs; ``sign``
    ``positive`` / ``negative`` keeps one of them); clusters under ``min_cluster_ml`` are dropped;
    ties in size go to the higher peak of :func:`signed_heat`. Shared by the relevance clusters
    (:func:`find_clusters`) and the voxelwise comparator's (:mod:`datxai.group.voxelwise`).
    """
    from scipy import ndimage

    check_choice("group.connectivity", connectivity, _STRUCT)
    value = signed_heat(heat, sign)
    structure = ndimage.generate_binary_structure(3, _STRUCT[connectivity])
    # positive and negative heat are labelled apart, so a cluster never mixes signs
    pos = supra & (np.asarray(heat) > 0) & (sign != "negative")
    neg = supra & (np.asarray(heat) < 0) & (sign != "positive")
    lab, k = ndimage.label(pos, structure=structure)
    lab_neg, k_neg = ndimage.label(neg, structure=structure)
    lab = np.where(lab_neg > 0, lab_neg + k, lab)
    k += k_neg
    if k == 0:
        logger.info("no voxel above the threshold (%s heat)", sign)
        return np.zeros(heat.shape, np.int32)
    idx = np.arange(1, k + 1)
    sizes = ndimage.sum_labels(np.ones(heat.shape), lab, idx)
    peaks = ndimage.maximum(value, lab, idx)
    keep = [int(i) for i, s in zip(idx, sizes) if s * grid.voxel_ml >= min_cluster_ml - 1e-12]
    keep.sort(key=lambda i: (-sizes[i - 1], -peaks[i - 1]))
    out = np.zeros(heat.shape, np.int32)
    for new, old in enumerate(keep, start=1):
        out[lab == old] = new
    return out


def _voxel_side(x: np.ndarray) -> np.ndarray:
    return np.where(x < 0, "I", np.where(x > 0, "C", "M"))


def base_name(region: str) -> str:
    for p in ("Left_", "Right_"):
        if region.startswith(p):
            return region[len(p):]
    return region


def describe_clusters(labels: np.ndarray, heat: np.ndarray, grid: Grid, label_image: np.ndarray,
                      region_names, threshold: float = np.nan):
    """The cluster table (pandas, columns :data:`CLUSTER_COLUMNS`).

    ``label_image`` holds 1-based indices into ``region_names`` (0 = no region),
    e.g. :attr:`datxai.atlas.AtlasOnGrid.label_image`. ``labels`` lists every
    region the cluster overlaps as ``Base[I|C|M]:share`` (share of the
    cluster's voxels, descending; ``none`` = outside every atlas region);
    ``label`` is the base name of the most frequent region.
    """
    import pandas as pd

    xyz = grid.coords_mm()
    rows = []
    for c in range(1, int(labels.max(initial=0)) + 1):
        m = labels == c
        n = int(m.sum())
        if n == 0:
            continue
        h = heat[m].astype(np.float64)
        pts = xyz[:, m]
        sgn = 1 if h.sum() >= 0 else -1  # a cluster holds one sign of heat (find_clusters)
        ipk = int(np.argmax(sgn * h))
        w = np.clip(sgn * h, 0, None)
        com = (pts * w).sum(axis=1) / w.sum() if w.sum() > 0 else pts.mean(axis=1)
        sides = _voxel_side(pts[0])
        frac_i, frac_c = float((sides == "I").mean()), float((sides == "C").mean())
        side = ("I" if com[0] < 0 else "C") if min(frac_i, frac_c) <= OTHER_SIDE_MAX else "M"
        regions = np.asarray(label_image)[m]
        names = np.array(["none" if r == 0 else base_name(region_names[int(r) - 1]) for r in regions], dtype=object)
        keys, counts = np.unique(np.char.add(np.char.add(names.astype(str), "["), np.char.add(sides.astype(str), "]")),
                                 return_counts=True)
        order = np.lexsort((keys, -counts))
        labels_str = "; ".join(f"{keys[i]}:{counts[i] / n:.2f}" for i in order)
        bases, bcounts = np.unique(names[names != "none"].astype(str), return_counts=True)
        main = str(bases[np.lexsort((bases, -bcounts))[0]]) if bases.size else "none"
        rows.append({
            "cluster": c, "n_voxels": n, "volume_ml": n * grid.voxel_ml, "side": side, "frac_ipsi": frac_i,
            "peak_x": pts[0, ipk], "peak_y": pts[1, ipk], "peak_z": pts[2, ipk],
            "com_x": com[0], "com_y": com[1], "com_z": com[2],
            "peak_heat": h[ipk], "mean_heat": h.mean(), "label": main, "labels": labels_str, "threshold": threshold,
            "sign": sgn,
        })
    return pd.DataFrame(rows, columns=list(CLUSTER_COLUMNS))


# ----------------------------------------------------------------- validation (synthetic cohort only)

RELATION_TO_SIDE = {"ipsi": "I", "contra": "C"}
STRIATAL_LABELS = ("Putamen", "Caudate", "Accumbens", "Pallidum")  # the disease itself, not a planted region
VALIDATION_COLUMNS = ("planted_region", "side", "n_subjects", "hit", "cluster", "share", "peak_heat")


def planted_from_truth(records) -> list[tuple[str, str, int]]:
    """Distinct planted ``(region, side I|C, n_subjects)`` from ``{subject}_truth.json`` records.

    The simulator gives ``relation`` ipsi | contra relative to the more affected
    striatum, which after mirroring is I | C.
    """
    counts: dict[tuple[str, str], int] = {}
    for rec in records:
        for p in rec.get("planted", []) or []:
            rel = check_choice(f"truth of {rec.get('subject', '?')}: planted relation", p.get("relation"),
                               RELATION_TO_SIDE)
            key = (str(p["region"]), RELATION_TO_SIDE[rel])
            counts[key] = counts.get(key, 0) + 1
    return [(r, s, n) for (r, s), n in sorted(counts.items())]


def _cluster_regions(labels_str: str) -> dict[tuple[str, str], float]:
    out = {}
    for part in str(labels_str).split(";"):
        part = part.strip()
        if not part:
            continue
        name, share = part.rsplit(":", 1)
        base, side = name[:-1].split("[")
        out[(base, side)] = out.get((base, side), 0.0) + float(share)
    return out


def compare_with_truth(clusters, planted, min_share: float = 0.10):
    """Planted regions against the cluster table.

    A planted ``(region, side)`` is hit by a cluster when at least ``min_share``
    of the cluster's voxels lie in that region on that side. Clusters that hit
    no planted region are listed as ``striatal`` (main label a basal-ganglia
    structure, or at least ``min_share`` of the cluster in basal-ganglia structures:
    the simulated striatal loss) or ``spurious`` rows (planted_region empty).
    Returns a DataFrame with :data:`VALIDATION_COLUMNS`.
    """
    import pandas as pd

    regions = {int(r.cluster): _cluster_regions(r.labels) for r in clusters.itertuples()}
    heat = {int(r.cluster): float(r.peak_heat) for r in clusters.itertuples()}
    rows, used = [], set()
    for region, side, n in planted:
        cands = [(regions[c].get((region, side), 0.0), c) for c in regions]
        cands = [(s, c) for s, c in cands if s >= min_share]
        if cands:
            share, c = max(cands)
            hit = [c2 for s2, c2 in cands]
            used.update(hit)
            rows.append({"planted_region": region, "side": side, "n_subjects": n, "hit": "yes",
                         "cluster": ",".join(str(x) for x in sorted(hit)), "share": share, "peak_heat": heat[c]})
        else:
            rows.append({"planted_region": region, "side": side, "n_subjects": n, "hit": "no", "cluster": "",
                         "share": 0.0, "peak_heat": np.nan})
    main = {int(r.cluster): str(r.label) for r in clusters.itertuples()} if "label" in clusters else {}
    for c in sorted(set(regions) - used):
        # the simulated striatal loss: the main label is striatal, or a cluster grown around the
        # striatum (full setting) has at least min_share of its voxels in striatal structures
        striatal_share = sum(v for (region, _side), v in regions[c].items() if region in STRIATAL_LABELS)
        kind = "striatal" if main.get(c) in STRIATAL_LABELS or striatal_share >= min_share else "spurious"
        rows.append({"planted_region": "", "side": "", "n_subjects": 0, "hit": kind, "cluster": str(c),
                     "share": np.nan, "peak_heat": heat[c]})
    return pd.DataFrame(rows, columns=list(VALIDATION_COLUMNS))
