"""Evaluation of the CNN on the test set: predictions, confusion counts, Table 1 metrics with Wilson CIs.

Positive class = ``reduced`` (y = 1). Outcomes: TP (reduced called reduced),
TN (normal called normal), FP (normal called reduced), FN (reduced called normal).
Sensitivity = TP / (TP + FN), specificity = TN / (TN + FP), PPV = TP / (TP + FP),
NPV = TN / (TN + FN), accuracy = (TP + TN) / n; each is a binomial proportion
reported with the Wilson score interval (Wilson 1927; method 3 of Newcombe 1998).
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from ..intervals import wilson_ci
from .net import CLASSES, DatCNN, probabilities

log = logging.getLogger(__name__)

METRICS = ("accuracy", "sensitivity", "specificity", "ppv", "npv")
PREDICTION_COLUMNS = ("subject", "label", "predicted", "p_reduced", "correct", "outcome")


@torch.no_grad()
def predict(model: DatCNN, x: np.ndarray, batch_size: int = 8, device: str | torch.device = "cpu",
            amp: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Class predictions and P(reduced) for images ``x`` (N, nx, ny, nz).

    Returns ``(predicted (N,) int64, p_reduced (N,) float64)``; ``predicted`` is the
    arg-max of the logits (= ``p_reduced > 0.5``, ties to normal). ``amp`` uses bf16 on a GPU.
    """
    device = torch.device(device)
    model = model.to(device).eval()
    preds, probs = [], []
    for start in range(0, x.shape[0], batch_size):
        xb = torch.from_numpy(np.array(x[start:start + batch_size], dtype=np.float32)).to(device)  # a copy: x may be a read-only memmap
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=(amp and device.type == "cuda")):
            logits = model(xb.unsqueeze(1)).float()
        preds.append(logits.argmax(1).cpu().numpy())
        probs.append(probabilities(logits)[:, 1].double().cpu().numpy())
    if not preds:
        return np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate(preds).astype(np.int64), np.concatenate(probs)


def outcome(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """'TP' | 'TN' | 'FP' | 'FN' per case (positive = reduced = 1)."""
    y_true, y_pred = np.asarray(y_true, bool), np.asarray(y_pred, bool)
    out = np.where(y_true, np.where(y_pred, "TP", "FN"), np.where(y_pred, "FP", "TN"))
    return out.astype(object)


def predictions_table(subjects, y_true, y_pred, p_reduced):
    """The predictions TSV: subject, label, predicted (normal|reduced), p_reduced, correct (yes|no), outcome."""
    import pandas as pd

    y_true, y_pred = np.asarray(y_true, int), np.asarray(y_pred, int)
    names = np.array(CLASSES, dtype=object)
    return pd.DataFrame({
        "subject": list(subjects), "label": names[y_true], "predicted": names[y_pred],
        "p_reduced": np.asarray(p_reduced, float), "correct": np.where(y_true == y_pred, "yes", "no"),
        "outcome": outcome(y_true, y_pred),
    }, columns=list(PREDICTION_COLUMNS))


def confusion_counts(y_true, y_pred) -> dict:
    """``{'tp', 'tn', 'fp', 'fn'}`` with positive = reduced (1)."""
    y_true, y_pred = np.asarray(y_true, bool), np.asarray(y_pred, bool)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in shape")
    return {"tp": int((y_true & y_pred).sum()), "tn": int((~y_true & ~y_pred).sum()),
            "fp": int((~y_true & y_pred).sum()), "fn": int((y_true & ~y_pred).sum())}


def classification_metrics(tp: int, tn: int, fp: int, fn: int, confidence: float = 0.95) -> dict:
    """n, counts, and accuracy/sensitivity/specificity/PPV/NPV as fractions with Wilson CIs (NaN when undefined)."""
    parts = {"accuracy": (tp + tn, tp + tn + fp + fn), "sensitivity": (tp, tp + fn),
             "specificity": (tn, tn + fp), "ppv": (tp, tp + fp), "npv": (tn, tn + fn)}
    row = {"n": tp + tn + fp + fn, "tp": tp, "tn": tn, "fp": fp, "fn": fn}
    for name, (k, m) in parts.items():
        row[name] = k / m if m else float("nan")
        row[f"{name}_ci_low"], row[f"{name}_ci_high"] = wilson_ci(k, m, confidence)
    return row


def table1(predictions: dict, confidence: float = 0.95):
    """Table 1 from per-setting prediction tables (``{setting: DataFrame with label, predicted}``).

    Columns: setting, n, tp, tn, fp, fn, then each metric with ``_ci_low``/``_ci_high``,
    and ``ci_method`` (= "Wilson score, 95 %").
    """
    import pandas as pd

    rows = []
    for setting, df in predictions.items():
        missing = {"label", "predicted"} - set(df.columns)
        if missing:
            raise ValueError(f"predictions of setting {setting!r} lack column(s) {sorted(missing)}")
        counts = confusion_counts(df["label"].to_numpy() == "reduced", df["predicted"].to_numpy() == "reduced")
        rows.append({"setting": setting, **classification_metrics(**counts, confidence=confidence),
                     "ci_method": f"Wilson score, {100 * confidence:g} %"})
    cols = ["setting", "n", "tp", "tn", "fp", "fn"]
    cols += [c for m in METRICS for c in (m, f"{m}_ci_low", f"{m}_ci_high")] + ["ci_method"]
    return pd.DataFrame(rows, columns=cols)


def run_evaluation(model_path, images_npy, table_tsv, out_tsv, device: str = "auto", amp: bool = True,
                   batch_size: int = 8):
    """Predict the test images of one setting with its model; write the predictions TSV. Returns the table."""
    from ..io import InputError, write_tsv
    from .net import load_model
    from .train import load_dataset, resolve_device

    dev = resolve_device(device)
    model, info = load_model(model_path)
    data = load_dataset(images_npy, table_tsv)
    if list(data.shape) != list(info["arch"]["input_shape"]):
        raise InputError(f"{images_npy}: images of shape {data.shape} but {model_path} was trained on "
                         f"{tuple(info['arch']['input_shape'])}")
    pred, p = predict(model, data.x, batch_size=batch_size, device=dev, amp=amp)
    table = predictions_table(data.subjects, data.y, pred, p)
    counts = confusion_counts(data.y, pred)
    log.info("%s: %d test images, accuracy %.3f (TP %d, TN %d, FP %d, FN %d)", images_npy, len(data),
             (counts["tp"] + counts["tn"]) / max(len(data), 1), *counts.values())
    write_tsv(table, out_tsv)
    return table


def collect_table1(predictions: dict, table_out, figure_out=None, confidence: float = 0.95):
    """Table 1 from ``{setting: predictions.tsv path}``; write the TSV (and the bar figure). Returns the table."""
    from ..io import read_tsv, write_tsv
    from .plots import plot_table1

    frames = {s: read_tsv(p, required=["subject", "label", "predicted"]) for s, p in predictions.items()}
    t = table1(frames, confidence=confidence)
    write_tsv(t, table_out)
    if figure_out is not None:
        plot_table1(t, figure_out)
    return t


def repeats_tables(predictions: dict, confidence: float = 0.95):
    """Table 1 once per training repeat, and its spread over the repeats.

    ``predictions``: ``{setting: [predictions DataFrame of repeat 0, 1, ...]}`` (repeat 0
    = the study's model). Returns ``(per_repeat, summary)``: per_repeat has the
    :func:`table1` columns plus ``repeat``; summary has one row per setting with
    ``n_repeats`` and, for each metric, its mean, sample SD (ddof 1; NaN for one
    repeat), min and max over the repeats.
    """
    import pandas as pd

    frames = []
    for setting, reps in predictions.items():
        for r, df in enumerate(reps):
            t = table1({setting: df}, confidence=confidence)
            t.insert(1, "repeat", r)
            frames.append(t)
    per_repeat = pd.concat(frames, ignore_index=True)
    rows = []
    for setting, g in per_repeat.groupby("setting", sort=False):
        row = {"setting": setting, "n_repeats": len(g)}
        for m in METRICS:
            v = g[m].astype(float)
            row.update({f"{m}_mean": v.mean(), f"{m}_sd": v.std(ddof=1) if len(v) > 1 else float("nan"),
                        f"{m}_min": v.min(), f"{m}_max": v.max()})
        rows.append(row)
    return per_repeat, pd.DataFrame(rows)


def collect_repeats(predictions: dict, per_repeat_out, summary_out, confidence: float = 0.95):
    """:func:`repeats_tables` from ``{setting: [predictions.tsv path per repeat]}``; write both TSVs."""
    from ..io import read_tsv, write_tsv

    frames = {s: [read_tsv(p, required=["subject", "label", "predicted"]) for p in paths]
              for s, paths in predictions.items()}
    per_repeat, summary = repeats_tables(frames, confidence=confidence)
    write_tsv(per_repeat, per_repeat_out)
    write_tsv(summary, summary_out)
    for r in summary.itertuples():
        log.info("%s: accuracy over %d repeats %.3f +- %.3f (min %.3f, max %.3f)", r.setting, r.n_repeats,
                 r.accuracy_mean, r.accuracy_sd, r.accuracy_min, r.accuracy_max)
    return per_repeat, summary
