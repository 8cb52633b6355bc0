"""Case-level uncertainty over training repeats (``train.repeats > 1``).

Each repeat is the same network trained with another seed and evaluated on the same
test set. Per test case this module takes P(reduced) of every repeat and reports
the ensemble's mean, its sample SD (ddof 1) and its range (max - min). A case is
*flagged* uncertain when its spread, the SD or the range as configured
(``evaluate.uncertainty.measure``), is strictly greater than the threshold
(``evaluate.uncertainty.threshold``, in units of P(reduced), 0-1).

The ensemble's prediction is ``reduced`` when the mean P(reduced) is > 0.5 (ties to
normal, as the arg-max of one network). Repeat 0 is the study's model (the one LRP
explains); its prediction is its own ``predicted`` column.

Per setting, :func:`uncertainty_summary` reports: cases, flagged cases and their
share; accuracy of the ensemble-mean prediction and of repeat 0, on all cases and on
the unflagged ones; repeat 0's errors and how many of them are flagged ("caught"),
as a count and a share of all of repeat 0's errors. Every proportion has a Wilson
score interval (:func:`datxai.intervals.wilson_ci`). A share with an empty
denominator (no errors, no unflagged cases) is NaN, its interval too.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from ..intervals import wilson_ci

log = logging.getLogger(__name__)

MEASURES = ("sd", "range")
CASE_COLUMNS = (
    "setting", "subject", "label", "n_repeats", "p_reduced_mean", "p_reduced_sd", "p_reduced_min",
    "p_reduced_max", "p_reduced_range", "spread", "flagged", "votes_reduced", "predicted_mean",
    "correct_mean", "p_reduced_repeat0", "predicted_repeat0", "correct_repeat0",
)
# proportions of the summary: name -> (numerator column, denominator column)
PROPORTIONS = {
    "flagged_share": ("n_flagged", "n_cases"),
    "accuracy_mean": ("n_correct_mean", "n_cases"),
    "accuracy_mean_unflagged": ("n_correct_mean_unflagged", "n_unflagged"),
    "accuracy_repeat0": ("n_correct_repeat0", "n_cases"),
    "accuracy_repeat0_unflagged": ("n_correct_repeat0_unflagged", "n_unflagged"),
    "errors_repeat0_caught_share": ("errors_repeat0_caught", "errors_repeat0"),
}


def check_uncertainty_params(measure: str, threshold: float) -> None:
    """``measure`` is 'sd' or 'range'; ``threshold`` a finite number in [0, 1] (units of P(reduced))."""
    if measure not in MEASURES:
        raise ValueError(f"uncertainty measure must be one of {list(MEASURES)}, got {measure!r}")
    try:
        t = float(threshold)
    except (TypeError, ValueError):
        raise ValueError(f"uncertainty threshold must be a number in [0, 1], got {threshold!r}") from None
    if not (math.isfinite(t) and 0.0 <= t <= 1.0):
        raise ValueError(f"uncertainty threshold must be a number in [0, 1], got {threshold!r}")


def _aligned(repeats: list, setting: str):
    """Subjects (repeat 0's order), labels, and P(reduced) / predicted-reduced arrays of shape (repeats, cases).

    Every repeat must hold the same subjects, once each, with the same labels; the error names the
    setting, the repeat and the subjects that differ.
    """
    required = {"subject", "label", "predicted", "p_reduced"}
    for r, df in enumerate(repeats):
        missing = required - set(df.columns)
        if missing:
            raise ValueError(f"setting {setting!r}, repeat {r}: predictions lack column(s) {sorted(missing)}")
        dup = sorted(df["subject"][df["subject"].duplicated()].astype(str).unique())
        if dup:
            raise ValueError(f"setting {setting!r}, repeat {r}: subject(s) listed more than once: {dup}")
    ref = repeats[0].set_index(repeats[0]["subject"].astype(str))
    subjects = list(ref.index)
    if not subjects:
        raise ValueError(f"setting {setting!r}: no test cases in the predictions")
    p = np.empty((len(repeats), len(subjects)))
    pred = np.empty((len(repeats), len(subjects)), bool)
    for r, df in enumerate(repeats):
        d = df.set_index(df["subject"].astype(str))
        absent, extra = sorted(set(subjects) - set(d.index)), sorted(set(d.index) - set(subjects))
        if absent or extra:
            raise ValueError(f"setting {setting!r}: the repeats were not evaluated on the same test cases: "
                             f"repeat {r} lacks {absent} and has {extra} beyond repeat 0's")
        d = d.loc[subjects]
        bad = [s for s in subjects if d.at[s, "label"] != ref.at[s, "label"]]
        if bad:
            raise ValueError(f"setting {setting!r}: repeat {r} gives other labels than repeat 0 for {bad}")
        values = d["p_reduced"].to_numpy(float)
        if not np.all((values >= 0) & (values <= 1)):
            out = [s for s, v in zip(subjects, values) if not 0 <= v <= 1]
            raise ValueError(f"setting {setting!r}, repeat {r}: p_reduced outside [0, 1] (or missing) for {out}")
        unknown = sorted(set(d["predicted"]) - {"normal", "reduced"})
        if unknown:
            raise ValueError(f"setting {setting!r}, repeat {r}: predicted must be normal|reduced, got {unknown}")
        p[r], pred[r] = values, d["predicted"].to_numpy() == "reduced"
    labels = ref["label"].to_numpy()
    unknown = sorted(set(labels) - {"normal", "reduced"})
    if unknown:
        raise ValueError(f"setting {setting!r}: label must be normal|reduced, got {unknown}")
    return subjects, labels, p, pred


def case_uncertainty(repeats: list, setting: str = "", measure: str = "sd", threshold: float = 0.1):
    """One row per test case of one setting from its repeats' prediction tables (repeat 0 first).

    ``repeats``: DataFrames with subject, label, predicted (normal|reduced) and p_reduced, at least 2.
    Columns: see :data:`CASE_COLUMNS`; ``spread`` is ``p_reduced_sd`` or ``p_reduced_range``
    (``measure``), ``flagged`` is yes when spread > ``threshold``, ``votes_reduced`` counts the
    repeats that predicted reduced, correct_* are yes|no. Cases in repeat 0's order.
    """
    import pandas as pd

    check_uncertainty_params(measure, threshold)
    if len(repeats) < 2:
        raise ValueError(f"setting {setting!r}: case-level uncertainty needs at least 2 repeats, got {len(repeats)}")
    subjects, labels, p, pred = _aligned(list(repeats), setting)
    truth = labels == "reduced"
    mean, sd = p.mean(0), p.std(0, ddof=1)
    lo, hi = p.min(0), p.max(0)
    spread = sd if measure == "sd" else hi - lo
    flagged = spread > float(threshold)
    pred_mean = mean > 0.5
    yes_no = np.array(["no", "yes"], dtype=object)
    names = np.array(["normal", "reduced"], dtype=object)
    return pd.DataFrame({
        "setting": setting, "subject": subjects, "label": labels, "n_repeats": len(repeats),
        "p_reduced_mean": mean, "p_reduced_sd": sd, "p_reduced_min": lo, "p_reduced_max": hi,
        "p_reduced_range": hi - lo, "spread": spread, "flagged": yes_no[flagged.astype(int)],
        "votes_reduced": pred.sum(0).astype(int), "predicted_mean": names[pred_mean.astype(int)],
        "correct_mean": yes_no[(pred_mean == truth).astype(int)], "p_reduced_repeat0": p[0],
        "predicted_repeat0": names[pred[0].astype(int)], "correct_repeat0": yes_no[(pred[0] == truth).astype(int)],
    }, columns=list(CASE_COLUMNS))


def uncertainty_summary(cases, measure: str = "sd", threshold: float = 0.1, confidence: float = 0.95):
    """One row per setting of a :func:`case_uncertainty` table (several settings may be concatenated).

    Columns: setting, measure, threshold, n_repeats, n_cases, n_flagged, n_unflagged, the counts behind
    each share (n_correct_mean[_unflagged], n_correct_repeat0[_unflagged], errors_repeat0,
    errors_repeat0_caught), then each share of :data:`PROPORTIONS` with ``_ci_low`` / ``_ci_high``,
    and ci_method.
    """
    import pandas as pd

    check_uncertainty_params(measure, threshold)
    rows = []
    for setting, g in cases.groupby("setting", sort=False):
        flagged = g["flagged"].to_numpy() == "yes"
        ok_mean, ok0 = g["correct_mean"].to_numpy() == "yes", g["correct_repeat0"].to_numpy() == "yes"
        row = {
            "setting": setting, "measure": measure, "threshold": float(threshold),
            "n_repeats": int(g["n_repeats"].iloc[0]), "n_cases": len(g), "n_flagged": int(flagged.sum()),
            "n_unflagged": int((~flagged).sum()),
            "n_correct_mean": int(ok_mean.sum()), "n_correct_mean_unflagged": int((ok_mean & ~flagged).sum()),
            "n_correct_repeat0": int(ok0.sum()), "n_correct_repeat0_unflagged": int((ok0 & ~flagged).sum()),
            "errors_repeat0": int((~ok0).sum()), "errors_repeat0_caught": int((~ok0 & flagged).sum()),
        }
        for name, (k, n) in PROPORTIONS.items():
            row[name] = row[k] / row[n] if row[n] else float("nan")
            row[f"{name}_ci_low"], row[f"{name}_ci_high"] = wilson_ci(row[k], row[n], confidence)
        row["ci_method"] = f"Wilson score, {100 * confidence:g} %"
        rows.append(row)
    counts = ["setting", "measure", "threshold", "n_repeats", "n_cases", "n_flagged", "n_unflagged",
              "n_correct_mean", "n_correct_mean_unflagged", "n_correct_repeat0", "n_correct_repeat0_unflagged",
              "errors_repeat0", "errors_repeat0_caught"]
    shares = [c for name in PROPORTIONS for c in (name, f"{name}_ci_low", f"{name}_ci_high")]
    return pd.DataFrame(rows, columns=counts + shares + ["ci_method"])


def uncertainty_tables(predictions: dict, measure: str = "sd", threshold: float = 0.1, confidence: float = 0.95):
    """``(cases, summary)`` from ``{setting: [predictions DataFrame of repeat 0, 1, ...]}``."""
    import pandas as pd

    check_uncertainty_params(measure, threshold)
    if not predictions:
        raise ValueError("case-level uncertainty needs the predictions of at least one setting")
    cases = pd.concat([case_uncertainty(reps, setting, measure, threshold) for setting, reps in predictions.items()],
                      ignore_index=True)
    return cases, uncertainty_summary(cases, measure, threshold, confidence)


def collect_uncertainty(predictions: dict, cases_out, summary_out, measure: str = "sd", threshold: float = 0.1,
                        confidence: float = 0.95):
    """:func:`uncertainty_tables` from ``{setting: [predictions.tsv path per repeat]}``; write both TSVs."""
    from ..io import InputError, read_tsv, write_tsv

    frames = {s: [read_tsv(p, required=["subject", "label", "predicted", "p_reduced"]) for p in paths]
              for s, paths in predictions.items()}
    try:
        cases, summary = uncertainty_tables(frames, measure, threshold, confidence)
    except ValueError as exc:
        files = "; ".join(f"{s}: {', '.join(map(str, paths))}" for s, paths in predictions.items())
        raise InputError(f"{exc} (predictions: {files})") from exc
    write_tsv(cases, cases_out)
    write_tsv(summary, summary_out)
    for r in summary.itertuples():
        log.info("%s: %d of %d cases flagged (%s > %g); accuracy ensemble %.3f (unflagged %.3f), repeat 0 %.3f "
                 "(unflagged %.3f); %d of %d repeat-0 errors flagged", r.setting, r.n_flagged, r.n_cases, measure,
                 threshold, r.accuracy_mean, r.accuracy_mean_unflagged, r.accuracy_repeat0,
                 r.accuracy_repeat0_unflagged, r.errors_repeat0_caught, r.errors_repeat0)
    return cases, summary
