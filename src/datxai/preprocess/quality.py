"""Per-subject files to one table, the SBR figure, and validation against the synthetic truth."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

SBR_COLUMNS = ["subject", "sbr_putamen_ipsi", "sbr_putamen_contra", "sbr_caudate_ipsi", "sbr_caudate_contra",
               "mirrored", "reference_p75", "lower_putamen_side"]
PALETTE = {"normal": "#1f77b4", "reduced": "#ff7f0e"}


def process_file(image_path, atlas, out_image, out_json, subject: str, percentile: float = 75.0,
                 margin_mm: float = 6.0, hottest_ml: float = 4.0) -> dict:
    """Scale, quantify and mirror one normalised NIfTI; write the scaled image and the SBR JSON atomically."""
    from ..io import load_nifti, save_nifti, write_json
    from . import scale_and_quantify

    data, affine = load_nifti(image_path, shape=atlas.grid.shape)
    if not np.allclose(affine, atlas.grid.affine, atol=1e-3):
        raise ValueError(f"{image_path}: affine differs from the analysis grid's\n{affine}\nvs\n{atlas.grid.affine}")
    try:
        scaled, record = scale_and_quantify(data, atlas, percentile, margin_mm, hottest_ml)
    except ValueError as exc:
        raise ValueError(f"{image_path} ({subject}): {exc}") from exc
    record = {"subject": subject, **record}
    save_nifti(scaled, atlas.grid.affine, out_image, header_extra={"mni": True})
    write_json(record, out_json)
    return record


def collect_sbr(json_paths, participants=None):
    """One row per subject from the per-subject SBR JSON files, in the order given.

    Returns a DataFrame with :data:`SBR_COLUMNS` first, then the per-side
    values before mirroring, then ``label`` when ``participants`` (a
    DataFrame) is given. Raises ValueError naming the file for a bad JSON.
    """
    import pandas as pd

    rows = []
    for p in json_paths:
        try:
            with open(p) as fh:
                rec = json.load(fh)
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{p}: not a readable SBR JSON ({exc})") from exc
        missing = [c for c in SBR_COLUMNS if c not in rec]
        if missing:
            raise ValueError(f"{p}: missing key(s) {missing}")
        rows.append(rec)
    df = pd.DataFrame(rows)
    if df["subject"].duplicated().any():
        raise ValueError(f"duplicate subjects among the SBR files: {sorted(df.loc[df['subject'].duplicated(), 'subject'])}")
    extra = [c for c in ("sbr_putamen_L", "sbr_putamen_R", "sbr_caudate_L", "sbr_caudate_R", "n_hottest") if c in df]
    df = df[SBR_COLUMNS + extra]
    if participants is not None:
        df = df.merge(participants[["subject", "label"]], on="subject", how="left", validate="one_to_one")
    return df


def plot_sbr(table, path) -> None:
    """Scatter of putamen SBR ipsilateral (I) vs contralateral (C), coloured by visual read; identity line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io import atomic_path

    fig, ax = plt.subplots(figsize=(5, 4.6))
    hue = table["label"] if "label" in table else None
    if hue is not None:
        for lab in ("normal", "reduced"):
            d = table[hue == lab]
            ax.scatter(d["sbr_putamen_ipsi"], d["sbr_putamen_contra"], s=18, alpha=0.8,
                       color=PALETTE[lab], label=f"{lab} (n = {len(d)})")
        ax.legend(title="visual read", loc="lower right", frameon=False)
    else:
        ax.scatter(table["sbr_putamen_ipsi"], table["sbr_putamen_contra"], s=18)
    lo = float(np.nanmin(table[["sbr_putamen_ipsi", "sbr_putamen_contra"]].to_numpy()))
    hi = float(np.nanmax(table[["sbr_putamen_ipsi", "sbr_putamen_contra"]].to_numpy()))
    pad = 0.05 * (hi - lo + 1e-9)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.6", lw=1, ls="--", zorder=0)
    ax.set_xlabel("putamen SBR, ipsilateral (I)")
    ax.set_ylabel("putamen SBR, contralateral (C)")
    ax.set_title(f"Putamen SBR by hottest voxels, n = {len(table)}")
    ax.set_aspect("equal", adjustable="datalim")
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    plt.close(fig)


def validate_sbr(measured, truth, true_cols: dict | None = None):
    """Compare measured putamen SBR with the synthetic truth.

    Parameters
    ----------
    measured : the ``sbr.tsv`` table (per-side columns ``sbr_putamen_L/R``
        before mirroring, ``sbr_putamen_ipsi``, ``lower_putamen_side``).
    truth : the simulator's truth table ``cohort_truth.tsv``, one row per
        subject (:func:`datxai.simulate.cohort.draw_cohort`).
    true_cols : names in ``truth`` of the true putamen SBR per side, of the
        more affected side (L/R) and of the true class:
        ``{"L": ..., "R": ..., "affected": ..., "class": ...}``. Defaults:
        ``sbr_putamen_L``, ``sbr_putamen_R``, ``affected_side``, ``true_class``
        (``class`` falls back to the visual read ``label`` when absent).

    Returns
    -------
    DataFrame ``measure, value, n, p, description`` with rows
    ``pearson_r_putamen`` (measured vs true putamen SBR, both sides pooled,
    n = 2 x subjects; P of the t-test of r = 0), ``pearson_r_putamen_ipsi``
    (lower measured side vs lower true side), ``fraction_side_correct``
    (truly reduced subjects whose lower measured putamen is the true more
    affected side) and ``mean_bias_putamen`` (measured - true).
    """
    import pandas as pd
    from scipy import stats

    cols = {"L": "sbr_putamen_L", "R": "sbr_putamen_R", "affected": "affected_side", "class": "true_class",
            **(true_cols or {})}
    if cols["class"] not in truth.columns and "label" in truth.columns:
        cols["class"] = "label"
    need = [c for c in cols.values() if c not in truth.columns]
    if need:
        raise ValueError(f"truth table: missing column(s) {need}; has {list(truth.columns)}")
    for c in ("subject", "sbr_putamen_L", "sbr_putamen_R", "sbr_putamen_ipsi", "lower_putamen_side"):
        if c not in measured.columns:
            raise ValueError(f"sbr table: missing column {c!r}; has {list(measured.columns)}")
    t = truth[["subject", *cols.values()]].rename(columns={v: f"true_{k}" for k, v in cols.items()})
    d = measured.merge(t, on="subject", how="inner")
    if len(d) < 3:
        raise ValueError(f"only {len(d)} subject(s) in common between the SBR table and the truth table (need >= 3)")
    meas = np.concatenate([d["sbr_putamen_L"], d["sbr_putamen_R"]]).astype(float)
    true = np.concatenate([d["true_L"], d["true_R"]]).astype(float)
    r, p = stats.pearsonr(meas, true)
    ri, pi = stats.pearsonr(d["sbr_putamen_ipsi"].astype(float), np.minimum(d["true_L"], d["true_R"]).astype(float))
    red = d[d["true_class"] == "reduced"]
    correct = (red["lower_putamen_side"].astype(str) == red["true_affected"].astype(str).str.upper().str[0]).to_numpy()
    rows = [
        {"measure": "pearson_r_putamen", "value": r, "n": len(meas), "p": p,
         "description": "measured vs true putamen SBR, both sides pooled; Pearson r, t-test of r = 0"},
        {"measure": "pearson_r_putamen_ipsi", "value": ri, "n": len(d), "p": pi,
         "description": "measured ipsilateral (lower) vs true lower putamen SBR; Pearson r, t-test of r = 0"},
        {"measure": "fraction_side_correct", "value": float(correct.mean()) if correct.size else np.nan,
         "n": int(correct.size), "p": np.nan,
         "description": "truly reduced subjects whose lower measured putamen is the true more affected side"},
        {"measure": "mean_bias_putamen", "value": float(np.mean(meas - true)), "n": len(meas), "p": np.nan,
         "description": "mean measured - true putamen SBR (partial volume lowers the measured SBR)"},
    ]
    log.info("putamen SBR vs truth: r = %.3f (n = %d); affected side correct in %d / %d reduced",
             r, len(meas), int(correct.sum()), correct.size)
    return pd.DataFrame(rows)
