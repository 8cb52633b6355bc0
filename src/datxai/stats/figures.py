"""Figures 4 and 5 of the study: focus-cluster uptake by visual read, ROC, and uptake vs SBR.

Matplotlib with the Agg backend (no display); seaborn for the statistics plots.
Colours: normal blue, reduced orange, the same in both figures.
"""

from __future__ import annotations

import html
import logging

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..io import atomic_path  # noqa: E402
from .correlation import pearson_fisher  # noqa: E402
from .roc import roc_auc, roc_curve  # noqa: E402
from .uptake import focus_name  # noqa: E402

log = logging.getLogger(__name__)

PALETTE = {"normal": "#1f77b4", "reduced": "#ff7f0e"}
ORDER = ["normal", "reduced"]


def _save(fig, path, dpi=120):
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    plt.close(fig)


def _empty(path, title, message):
    fig, ax = plt.subplots(figsize=(6, 2.5))
    ax.axis("off")
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    _save(fig, path)


def plot_focus_uptake(table: pd.DataFrame, focus: dict, path, subsets=("train", "test")) -> None:
    """Fig. 4: per subset, a histogram of focus-cluster uptake by visual read (group means
    dashed) and the ROC curve of uptake for reduced (lower uptake = reduced) with AUC.

    ``table``: long uptake table with label and subset (merged); ``focus``: from choose_focus.
    """
    import seaborn as sns

    title = f"Focus cluster: {focus_name(focus)}"
    if focus.get("cluster") is None:
        _empty(path, "Fig. 4", "No extrastriatal cluster was found; nothing to plot.")
        return
    d = table[table["cluster"] == focus["cluster"]]
    fig, axes = plt.subplots(len(subsets), 2, figsize=(10, 3.6 * len(subsets)), squeeze=False)
    for row, subset in enumerate(subsets):
        s = d[d["subset"] == subset]
        ax = axes[row, 0]
        if s.empty:
            ax.axis("off")
            axes[row, 1].axis("off")
            ax.set_title(f"{subset}: no subjects")
            continue
        sns.histplot(data=s, x="uptake", hue="label", hue_order=ORDER, palette=PALETTE, bins=20,
                     element="step", stat="count", common_bins=True, ax=ax)
        if ax.get_legend() is not None:
            ax.get_legend().set_title("visual read")
        for lab in ORDER:
            v = s.loc[s["label"] == lab, "uptake"]
            if len(v):
                ax.axvline(v.mean(), color=PALETTE[lab], ls="--", lw=1.5)
        n_r, n_n = int((s["label"] == "reduced").sum()), int((s["label"] == "normal").sum())
        ax.set_title(f"{subset}: uptake by visual read (n = {n_n} normal, {n_r} reduced)")
        ax.set_xlabel(f"mean scaled uptake, {focus['cluster_label']} ({focus['side']})")
        ax = axes[row, 1]
        pos = (s["label"] == "reduced").to_numpy()
        if pos.all() or not pos.any():
            ax.axis("off")
            ax.set_title(f"{subset}: ROC undefined (one class)")
            continue
        fpr, tpr, _ = roc_curve(s["uptake"].to_numpy(), pos, "lower")
        r = roc_auc(s["uptake"].to_numpy(), pos, "lower")
        ax.plot(fpr, tpr, color="k", lw=1.8, drawstyle="steps-post")
        ax.plot([0, 1], [0, 1], color="0.6", ls=":", lw=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        ax.set_aspect("equal")
        ax.set_xlabel("1 - specificity")
        ax.set_ylabel("sensitivity")
        ax.set_title(f"{subset}: ROC, lower uptake = reduced")
        ax.text(0.97, 0.05, f"AUC {r['auc']:.3f}\n95% CI {r['auc_ci_low']:.3f}-{r['auc_ci_high']:.3f}\n"
                f"P = {r['p']:.2g} (Mann-Whitney)", ha="right", va="bottom", transform=ax.transAxes, fontsize=9)
    fig.suptitle(f"{title}\n({focus['reason']})", fontsize=10)
    fig.tight_layout()
    _save(fig, path)
    log.info("wrote %s", path)


def plot_uptake_vs_sbr(table: pd.DataFrame, focus: dict, path, sbr_column: str = "sbr_putamen_ipsi") -> None:
    """Fig. 5: focus-cluster uptake vs ipsilateral putamen SBR, coloured by visual read,
    with Pearson R (Fisher-z 95 % CI) in all, reduced and normal subjects."""
    import seaborn as sns

    if focus.get("cluster") is None:
        _empty(path, "Fig. 5", "No extrastriatal cluster was found; nothing to plot.")
        return
    d = table[table["cluster"] == focus["cluster"]]
    fig, ax = plt.subplots(figsize=(6.5, 5))
    sns.scatterplot(data=d, x=sbr_column, y="uptake", hue="label", hue_order=ORDER, palette=PALETTE,
                    s=18, alpha=0.8, ax=ax)
    if ax.get_legend() is not None:
        ax.get_legend().set_title("visual read")
    lines = []
    for subset in ("all", *ORDER):
        s = d if subset == "all" else d[d["label"] == subset]
        r = pearson_fisher(s["uptake"], s[sbr_column])
        lines.append(f"{subset}: R = {r['r']:.3f} ({r['r_ci_low']:.2f}-{r['r_ci_high']:.2f}), "
                     f"P = {r['p']:.2g}, n = {r['n']}")
        if subset != "all" and r["n"] > 2 and np.isfinite(r["r"]):
            b, a = np.polyfit(s[sbr_column], s["uptake"], 1)
            xx = np.linspace(s[sbr_column].min(), s[sbr_column].max(), 2)
            ax.plot(xx, a + b * xx, color=PALETTE[subset], lw=1.2)
    ax.text(0.02, 0.98, "\n".join(lines), transform=ax.transAxes, va="top", ha="left", fontsize=8,
            bbox=dict(facecolor="white", alpha=0.8, edgecolor="0.8"))
    ax.set_xlabel("putamen SBR, ipsilateral (I)")
    ax.set_ylabel(f"mean scaled uptake, {focus['cluster_label']} ({focus['side']})")
    ax.set_title(f"Focus cluster: {focus_name(focus)}\n({focus['reason']})", fontsize=9)
    fig.tight_layout()
    _save(fig, path)
    log.info("wrote %s", path)


def tables_html(tables: dict, path, title: str = "") -> None:
    """Write named DataFrames as one self-contained HTML snippet (for the report)."""
    parts = [f"<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;font-size:12px} table{border-collapse:collapse;margin-bottom:1em}"
             "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right} th{background:#eee}</style></head><body>"]
    if title:
        parts.append(f"<h2>{html.escape(title)}</h2>")
    for name, df in tables.items():
        parts.append(f"<h3>{html.escape(name)}</h3>")
        parts.append(df.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="", border=0))
    parts.append("</body></html>")
    with atomic_path(path, suffix=".html") as tmp:
        with open(tmp, "w") as fh:
            fh.write("\n".join(parts))
