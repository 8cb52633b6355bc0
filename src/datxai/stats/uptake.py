"""Cluster ROIs: mean scaled uptake per subject and cluster, and the focus cluster.

The clusters come from the group stage (``group/{setting}/clusters.nii.gz``: integer
labels 1..K on the MNI analysis grid, 0 outside; ``clusters.tsv``: one row per
cluster with its atlas ``label`` and ``side``). Images are the scaled and mirrored
MNI images, so side I (ipsilateral, x < 0) is the side of the lower putamen SBR.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..io import InputError, load_nifti, read_tsv

log = logging.getLogger(__name__)

CLUSTER_COLUMNS = ["cluster", "label", "side"]
UPTAKE_COLUMNS = ["subject", "cluster", "cluster_label", "side", "uptake"]


def load_clusters(nifti_path, tsv_path) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Read the cluster label image and table and check they agree.

    Returns ``(labels, affine, table)``: labels int32 of the grid's shape (0 = no
    cluster), the image affine, and the table sorted by cluster.
    """
    table = read_tsv(tsv_path, required=CLUSTER_COLUMNS)
    data, affine = load_nifti(nifti_path, allow_zero=True)
    labels = np.rint(data).astype(np.int32)
    if np.any(np.abs(data - labels) > 1e-3) or labels.min() < 0:
        raise InputError(f"{nifti_path}: cluster labels must be non-negative integers")
    # I = ipsilateral, C = contralateral, M = midline (a cluster spanning both sides)
    if not table["side"].isin(["I", "C", "M"]).all():
        bad = sorted(set(table["side"]) - {"I", "C", "M"})
        raise InputError(f"{tsv_path}: column side must be I, C or M, got {bad}")
    ids = table["cluster"].astype(int).to_numpy()
    present = set(np.unique(labels[labels > 0]).tolist())
    missing = sorted(set(ids.tolist()) - present)
    if missing:
        raise InputError(f"{tsv_path}: cluster(s) {missing} have no voxel in {nifti_path}")
    extra = sorted(present - set(ids.tolist()))
    if extra:
        log.warning("%s: labels %s are not in %s and are ignored", nifti_path, extra, tsv_path)
    table = table.assign(cluster=ids).sort_values("cluster").reset_index(drop=True)
    return labels, affine, table


def cluster_means(images: np.ndarray, labels: np.ndarray, cluster_ids) -> np.ndarray:
    """Mean of each image inside each cluster.

    Parameters
    ----------
    images : ndarray (N, M) or (N, nx, ny, nz)
        Voxel values of N subjects; (N, M) holds only the voxels ``labels > 0`` in
        C order (what :func:`stack_cluster_voxels` returns).
    labels : ndarray (nx, ny, nz) of int
    cluster_ids : sequence of int, length K

    Returns
    -------
    ndarray (N, K) float64.
    """
    labels = np.asarray(labels)
    inside = labels > 0
    images = np.asarray(images)
    vox = images.reshape(images.shape[0], -1)[:, inside.ravel()] if images.ndim == 4 else images
    lab = labels[inside]
    if vox.shape[1] != lab.size:
        raise ValueError(f"images have {vox.shape[1]} cluster voxels, labels {lab.size}")
    ids = np.asarray(cluster_ids, dtype=int)
    onehot = (lab[:, None] == ids[None, :]).astype(np.float64)  # (M, K)
    counts = onehot.sum(axis=0)
    if np.any(counts == 0):
        raise ValueError(f"clusters {ids[counts == 0].tolist()} have no voxel")
    return (vox.astype(np.float64) @ onehot) / counts


def stack_cluster_voxels(paths, labels: np.ndarray, affine: np.ndarray | None = None) -> np.ndarray:
    """Load each image once and keep only its cluster voxels: (N, M) float32.

    Images must have the label image's shape (and affine, when given); errors name the file.
    """
    inside = np.asarray(labels) > 0
    out = np.empty((len(paths), int(inside.sum())), dtype=np.float32)
    step = max(1, len(paths) // 10)
    for i, p in enumerate(paths):
        data, aff = load_nifti(p, shape=labels.shape)
        if affine is not None and not np.allclose(aff, affine, atol=1e-3):
            raise InputError(f"{p}: affine differs from the cluster image's (not on the analysis grid)")
        out[i] = data[inside]
        if (i + 1) % step == 0 or i + 1 == len(paths):
            log.info("loaded %d / %d images", i + 1, len(paths))
    return out


def uptake_table(subjects, means: np.ndarray, clusters: pd.DataFrame) -> pd.DataFrame:
    """Long table (subject, cluster, cluster_label, side, uptake) from (N, K) means."""
    subjects = list(subjects)
    means = np.asarray(means)
    if means.shape != (len(subjects), len(clusters)):
        raise ValueError(f"means {means.shape} do not match {len(subjects)} subjects x {len(clusters)} clusters")
    return pd.DataFrame({
        "subject": np.repeat(subjects, len(clusters)),
        "cluster": np.tile(clusters["cluster"].to_numpy(int), len(subjects)),
        "cluster_label": np.tile(clusters["label"].astype(str).to_numpy(), len(subjects)),
        "side": np.tile(clusters["side"].to_numpy(), len(subjects)),
        "uptake": means.ravel(),
    }, columns=UPTAKE_COLUMNS)


def stack_rows_cluster_voxels(stack, subjects, labels: np.ndarray, affine: np.ndarray,
                              chunk: int = 64) -> np.ndarray:
    """The cluster voxels of ``subjects`` from an :class:`datxai.dataset.ImageStack`: (N, M) float32.

    Reads ``chunk`` rows of the memory-mapped stack at a time (bounded memory).
    """
    stack.check_grid(labels.shape, affine, what="the cluster image's grid")
    rows = stack.rows(subjects)
    inside = np.asarray(labels) > 0
    out = np.empty((len(rows), int(inside.sum())), dtype=np.float32)
    for start in range(0, len(rows), chunk):
        block = np.asarray(stack.array[rows[start:start + chunk]])
        out[start:start + len(block)] = block[:, inside]
    return out


def compute_uptake(subjects, images, clusters_nii, clusters_tsv) -> pd.DataFrame:
    """Mean scaled uptake of every subject in every cluster (long format).

    ``images``: the scaled images as NIfTI paths in ``subjects`` order, or an
    :class:`datxai.dataset.ImageStack` holding every subject.
    """
    from ..dataset import ImageStack

    stacked = isinstance(images, ImageStack)
    if not stacked and len(subjects) != len(images):
        raise ValueError(f"{len(subjects)} subjects but {len(images)} images")
    labels, affine, clusters = load_clusters(clusters_nii, clusters_tsv)
    log.info("%d clusters, %d voxels, %d subjects", len(clusters), int((labels > 0).sum()), len(subjects))
    if clusters.empty:
        return pd.DataFrame(columns=UPTAKE_COLUMNS)
    if stacked:
        vox = stack_rows_cluster_voxels(images, list(subjects), labels, affine)
    else:
        vox = stack_cluster_voxels(images, labels, affine)
    return uptake_table(subjects, cluster_means(vox, labels, clusters["cluster"]), clusters)


def merge_uptake(uptake: pd.DataFrame, participants: pd.DataFrame, split: pd.DataFrame | None = None,
                 sbr: pd.DataFrame | None = None, sources: dict | None = None) -> pd.DataFrame:
    """Attach the visual read (label), the subset and the SBR columns to the uptake table.

    Every uptake subject must be in participants (and split, sbr when given); the
    error names the first missing subjects and the file (``sources`` maps
    'participants'/'split'/'sbr' to file names for messages).
    """
    sources = sources or {}
    out = uptake.copy()
    subj = set(out["subject"])
    for name, df, cols in (("participants", participants, ["label"]), ("split", split, ["subset"]),
                           ("sbr", sbr, None)):
        if df is None:
            continue
        missing = sorted(subj - set(df["subject"]))
        if missing:
            raise InputError(f"{sources.get(name, name)}: no row for subject(s) {missing[:5]}"
                             + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else ""))
        keep = cols if cols is not None else [c for c in df.columns if c.startswith("sbr_")]
        # the participants sheet is the one source of the label (and split of the subset):
        # a same-named column already in the table is replaced, not suffixed
        out = out.drop(columns=[c for c in keep if c in out.columns])
        out = out.merge(df[["subject", *keep]], on="subject", how="left", validate="many_to_one")
    if "label" in out and not out["label"].isin(["normal", "reduced"]).all():
        bad = sorted(set(out["label"]) - {"normal", "reduced"})
        raise InputError(f"{sources.get('participants', 'participants')}: label must be normal|reduced, got {bad}")
    return out


def choose_focus(clusters: pd.DataFrame, ttests: pd.DataFrame | None, label: str | None, side: str | None) -> dict:
    """The focus cluster: the requested atlas ``label`` and ``side``, else the largest training |d|.

    Parameters
    ----------
    clusters : DataFrame with cluster, label (or cluster_label), side, and optionally n_voxels.
    ttests : output of :func:`datxai.stats.ttests.cluster_ttests` (rows of subset 'train' used).

    Returns
    -------
    dict: cluster (int or None), cluster_label, side, reason (a sentence for captions),
    requested ({label, side}), fallback (bool).
    """
    lab_col = "label" if "label" in clusters.columns else "cluster_label"
    requested = {"label": label, "side": side}
    if clusters.empty:
        return {"cluster": None, "cluster_label": None, "side": None, "fallback": True, "requested": requested,
                "reason": "no clusters were found, so there is no focus cluster"}
    match = clusters[(clusters[lab_col].astype(str) == str(label)) & (clusters["side"] == side)] if label else clusters.iloc[:0]
    if not match.empty:
        if len(match) > 1 and "n_voxels" in match:
            match = match.sort_values(["n_voxels", "cluster"], ascending=[False, True])
        row = match.iloc[0]
        reason = f"requested in config stats.focus ({label}, side {side})"
        if len(match) > 1:
            reason += f"; the largest of {len(match)} clusters with that label and side"
        fallback = False
    else:
        train = ttests[ttests["subset"] == "train"] if ttests is not None and not ttests.empty else None
        if train is None or train["cohen_d"].abs().isna().all():
            row = clusters.sort_values("cluster").iloc[0]
            why = "no training-set effect sizes"
        else:
            best = train.assign(absd=train["cohen_d"].abs()).sort_values(["absd", "cluster"], ascending=[False, True]).iloc[0]
            row = clusters[clusters["cluster"] == best["cluster"]].iloc[0]
            why = f"the largest training-set effect, |d| = {best['absd']:.2f}"
        reason = (f"no cluster labelled {label} on side {side} (config stats.focus); fallback: {why}"
                  if label else f"no focus label configured; fallback: {why}")
        fallback = True
    chosen = {"cluster": int(row["cluster"]), "cluster_label": str(row[lab_col]), "side": str(row["side"]),
              "fallback": fallback, "requested": requested, "reason": reason}
    log.info("focus cluster %s (%s %s): %s", chosen["cluster"], chosen["cluster_label"], chosen["side"], reason)
    return chosen


def focus_name(focus: dict) -> str:
    """'Insular_Cortex (I), cluster 3' — a readable name for figures."""
    if focus.get("cluster") is None:
        return "no cluster"
    return f"{focus['cluster_label']} ({focus['side']}), cluster {focus['cluster']}"


__all__ = ["load_clusters", "cluster_means", "stack_cluster_voxels", "uptake_table", "compute_uptake",
           "merge_uptake", "choose_focus", "focus_name"]
