"""Figures of the classification stage: Table 1 as bars with CIs, learning curves."""

from __future__ import annotations

import logging

import numpy as np

from .evaluate import METRICS

log = logging.getLogger(__name__)

_LABELS = {"accuracy": "Accuracy", "sensitivity": "Sensitivity", "specificity": "Specificity",
           "ppv": "PPV", "npv": "NPV"}


def _save(fig, path) -> None:
    from ..io import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=150, bbox_inches="tight", format="png")


def plot_table1(table, path) -> None:
    """Grouped bars: metric (x) by setting (hue), height = fraction, error bars = the CI columns."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = list(table["setting"])
    width = 0.8 / max(len(settings), 1)
    x = np.arange(len(METRICS))
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for i, (_, row) in enumerate(table.iterrows()):
        h = np.array([row[m] for m in METRICS], float)
        lo = np.array([row[f"{m}_ci_low"] for m in METRICS], float)
        hi = np.array([row[f"{m}_ci_high"] for m in METRICS], float)
        err = np.nan_to_num(np.vstack([h - lo, hi - h]), nan=0.0)
        ax.bar(x + (i - (len(settings) - 1) / 2) * width, np.nan_to_num(h), width, yerr=err, capsize=3,
               label=f"{row['setting']} (n = {int(row['n'])})")
    ax.set_xticks(x, [_LABELS[m] for m in METRICS])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("fraction of test cases")
    ax.set_title("Test-set classification (95 % Wilson CI)")
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", alpha=0.3)
    _save(fig, path)
    plt.close(fig)


def plot_learning_curves(histories: dict, path) -> None:
    """Loss and accuracy per epoch, train (solid) and validation (dashed), one colour per setting.

    ``histories``: ``{setting: DataFrame with the history.tsv columns}``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.6))
    for i, (setting, h) in enumerate(histories.items()):
        colour = f"C{i}"
        for ax, col in ((ax_loss, "loss"), (ax_acc, "accuracy")):
            ax.plot(h["epoch"], h[f"train_{col}"], color=colour, label=f"{setting} train")
            if np.isfinite(h[f"val_{col}"]).any():
                ax.plot(h["epoch"], h[f"val_{col}"], color=colour, ls="--", label=f"{setting} validation")
    ax_loss.set_ylabel("cross-entropy")
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_ylim(0, 1.02)
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    ax_acc.legend(frameon=False, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
