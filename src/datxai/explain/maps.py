"""Relevance maps of one setting's test set, written as NIfTI on the full MNI grid.

:func:`explain_setting` reads nothing from disk: the rule adapter and the CLI
load the model, the dataset and the predictions, and pass them in.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..checks import check_choice
from ..dataset import to_full
from ..grid import Grid
from ..io import InputError, save_nifti
from .lrp import LRPConfig, explain_array, logit_margin_model

logger = logging.getLogger(__name__)

CLASSES = ("normal", "reduced")
TARGETS = ("predicted", "reduced", "margin")  # explain.target: which output each map explains
MARGIN = "reduced-normal"  # the explained output of target "margin" (the log-odds of reduced)
TABLE_COLUMNS = ("subject", "label", "predicted", "outcome", "explained", "logit", "relevance_sum", "conservation",
                 "argmax_agrees")


def outcome_of(label: str, predicted: str) -> str:
    """TP | TN | FP | FN with positive = reduced."""
    check_choice("label", label, CLASSES)
    check_choice("predicted", predicted, CLASSES)
    return {("reduced", "reduced"): "TP", ("normal", "normal"): "TN",
            ("normal", "reduced"): "FP", ("reduced", "normal"): "FN"}[(label, predicted)]


def match_predictions(subjects: list[str], labels: list[str], predictions, source: str = "predictions") -> list[str]:
    """The predicted class per test subject (in ``subjects`` order), checked against the dataset's labels.

    ``predictions`` is the evaluate table (subject, label, predicted). Raises
    :class:`InputError` naming ``source`` when a subject is missing or a label differs.
    """
    pred = predictions.set_index(predictions["subject"].astype(str))
    missing = [s for s in subjects if s not in pred.index]
    if missing:
        raise InputError(f"{source}: no prediction for test subject(s) {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    out = []
    for s, lab in zip(subjects, labels):
        if str(pred.at[s, "label"]) != lab:
            raise InputError(f"{source}: subject {s} has label {pred.at[s, 'label']!r} but the dataset says {lab!r}")
        out.append(check_choice(f"{source}: predicted of subject {s}", str(pred.at[s, "predicted"]), CLASSES,
                                exc=InputError))
    return out


def explain_setting(model, data: np.ndarray, subjects: list[str], labels: list[str], predicted: list[str],
                    setting: str, grid: Grid, box_mm, cfg: LRPConfig, out_dir, *,
                    batch_size: int = 4, device: str = "auto", target: str = "predicted"):
    """LRP maps of every case of one setting; returns the relevance table (pandas).

    Parameters
    ----------
    model : the setting's CNN (:func:`datxai.model.load_model`).
    data : ``(N, ...)`` the setting's test images (crop for ``striatum``), float32.
    subjects, labels : rows of ``data`` (``test.tsv``).
    predicted : the evaluated class per row; with ``target="predicted"`` the map
        explains that class's logit (the most activated output, S1/S2);
        ``argmax_agrees`` says whether this float32 pass's arg-max agrees with
        it (borderline cases may flip between bf16 and float32).
    target : ``predicted`` (the papers' text) or ``reduced``: every map explains
        the logit of the class 'reduced', so positive relevance is evidence for
        'reduced' and negative for 'normal' in every case. TP and TN maps then
        share one output, and heat = mean(TP) - mean(TN) compares inputs rather
        than two outputs' weights. ``margin``: every map explains the log-odds
        ``logit[reduced] - logit[normal]`` (:func:`~datxai.explain.lrp.logit_margin_model`):
        the same sign convention as ``reduced``, but the explained quantity is
        the one the decision is made on (its sign is the prediction), free of the
        arbitrary offset a single logit of a softmax carries. The table's
        ``explained`` column records the choice; ``logit`` is the explained output.
    grid, box_mm : the analysis grid and ``settings.striatum_box_mm`` (maps of
        the ``striatum`` setting are placed back into the full grid, zero outside).
    out_dir : folder for ``{subject}_relevance.nii.gz`` (float32, MNI, RAS+).
    """
    import pandas as pd

    if not (len(subjects) == len(labels) == len(predicted) == len(data)):
        raise ValueError(f"{len(data)} images but {len(subjects)} subjects / {len(labels)} labels / "
                         f"{len(predicted)} predictions")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    check_choice("explain.target", target, TARGETS)
    if target == "predicted":
        targets = np.array([CLASSES.index(p) for p in predicted])
    elif target == "margin":
        model = logit_margin_model(model, CLASSES.index("reduced"), CLASSES.index("normal"))
        targets = np.zeros(len(predicted), dtype=int)
    else:
        targets = np.full(len(predicted), CLASSES.index(target))
    rows = []
    for case in explain_array(model, data, cfg, batch_size=batch_size, device=device, targets=targets):
        k = case.index
        rel = to_full(case.relevance, setting, grid, box_mm).astype(np.float32)
        if not np.any(rel):
            raise FloatingPointError(f"{setting}/{subjects[k]}: the relevance map is all zero")
        save_nifti(rel, grid.affine, out_dir / f"{subjects[k]}_relevance.nii.gz", header_extra={"mni": True})
        rows.append({
            "subject": subjects[k], "label": labels[k], "predicted": predicted[k],
            "outcome": outcome_of(labels[k], predicted[k]),
            "explained": MARGIN if target == "margin" else CLASSES[case.target],
            "logit": case.logit, "relevance_sum": case.relevance_sum, "conservation": case.conservation,
            "argmax_agrees": "yes" if _decision(case.logits, target) == predicted[k] else "no",
        })
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    flipped = table.loc[table["argmax_agrees"] == "no", "subject"].tolist()
    if flipped:
        logger.warning("%s: float32 arg-max differs from the evaluated prediction for %s (borderline cases); "
                       "their maps explain %s", setting, flipped,
                       "the evaluated class" if target == "predicted" else f"the {target!r} output as all others")
    logger.info("%s: conservation (sum of map / logit) median %.4f, range %.4f .. %.4f", setting,
                table["conservation"].median(), table["conservation"].min(), table["conservation"].max())
    return table


def _decision(outputs: np.ndarray, target: str) -> str:
    """The class this pass's outputs decide: the arg-max of the logits, or the sign of the log-odds (margin)."""
    if target == "margin":
        return "reduced" if float(outputs[0]) > 0 else "normal"
    return CLASSES[int(np.argmax(outputs))]


def run_compute_relevance(model_path, images_npy, table_tsv, predictions_tsv, out_dir, setting: str, grid: Grid,
                          box_mm, explain: dict | None = None, batch_size: int = 4, device: str = "auto"):
    """File-level entry (rule ``compute_relevance`` and ``datxai explain``).

    Reads the model (:func:`datxai.model.load_model`), ``test.npy``/``test.tsv``
    (:func:`datxai.model.train.load_dataset`) and the evaluate predictions;
    writes ``{subject}_relevance.nii.gz`` and ``relevance.tsv`` into ``out_dir``.
    (The companion study's putamen relevance is read off these maps by
    :func:`datxai.group.run.run_companion`.)
    """
    from ..io import read_tsv, write_tsv
    from ..model import load_model
    from ..model.train import load_dataset

    cfg = LRPConfig.from_config(explain)
    model, info = load_model(model_path)
    ds = load_dataset(images_npy, table_tsv)
    if tuple(ds.x.shape[1:]) != tuple(model.input_shape):
        raise InputError(f"{images_npy}: images of shape {ds.x.shape[1:]} do not fit the model "
                         f"{model_path} (input {model.input_shape})")
    table = read_tsv(table_tsv, required=["subject", "label"])
    labels = table["label"].astype(str).tolist()
    predicted = match_predictions(ds.subjects, labels, read_tsv(predictions_tsv, ["subject", "label", "predicted"]),
                                  str(predictions_tsv))
    target = (explain or {}).get("target", "predicted")
    logger.info("%s: LRP of %d test cases (%s), rules %s, zero_params %s, explaining the %s logit", setting,
                len(ds.subjects), model_path, resolve_layer_rules_summary(model, cfg), cfg.zero_params,
                {"predicted": "predicted class's", "margin": "'reduced' - 'normal' (log-odds)"}.get(target, f"{target!r}"))
    result = explain_setting(model, ds.x, ds.subjects, labels, predicted, setting, grid, box_mm, cfg, out_dir,
                             target=target, batch_size=batch_size, device=device)
    write_tsv(result, Path(out_dir) / "relevance.tsv")
    return result


def resolve_layer_rules_summary(model, cfg: LRPConfig) -> str:
    from .lrp import resolve_layer_rules

    return ", ".join(f"{k}={v}" for k, v in resolve_layer_rules(model, cfg.rules).items())
