# Python shared by every stage file: config and participants validation,
# wildcard constraints, the subject list, named input functions, targets.

import os

from snakemake.exceptions import WorkflowError

from datxai.config import ConfigError, validate_config

try:
    validate_config(config, source="config")
except ConfigError as exc:
    raise WorkflowError(str(exc))

RESULTS = config["results"]
LOGS = os.path.join(RESULTS, "logs")
BENCH = os.path.join(RESULTS, "benchmarks")
SETTINGS = list(config["settings"]["names"])
CLUSTER_SETTINGS = [s for s in config["group"]["settings"] if s in SETTINGS]
SYNTHETIC = config["cohort"]["source"] == "synthetic"


wildcard_constraints:
    subject=r"sub-[A-Za-z0-9]+",
    setting="|".join(SETTINGS),
    subset="train|val|test",


def res(*parts):
    """A path under the results folder."""
    return os.path.join(RESULTS, *parts)


def log(*parts):
    return os.path.join(LOGS, *parts)


def bench(*parts):
    return os.path.join(BENCH, *parts)


def _subjects():
    if SYNTHETIC:
        n = int(config["simulate"]["n_subjects"])
        return [f"sub-{i:04d}" for i in range(1, n + 1)]
    from datxai.participants import load_participants, ParticipantsError

    try:
        table = load_participants(config["cohort"]["participants"])
    except ParticipantsError as exc:
        raise WorkflowError(str(exc))
    return list(table["subject"])


SUBJECTS = _subjects()


def participants_tsv():
    """The participants sheet: written by the simulator, or the user's (validated) file."""
    return (
        res("cohort", "participants.tsv")
        if SYNTHETIC
        else config["cohort"]["participants"]
    )


def final_targets():
    """Everything `rule all` builds, stage by stage in DAG order."""
    targets = []
    if SYNTHETIC:
        targets += [res("cohort", "figures", "montage.png")]
    targets += [
        res("qc", "normalize_montage.png"),
        res("qc", "registration.tsv"),
        res("quant", "sbr.tsv"),
        res("split", "balance.tsv"),
    ]
    targets += expand(res("figures", "dataset_{setting}.png"), setting=SETTINGS)
    targets += [
        res("evaluate", "table1.tsv"),
        res("figures", "learning_curves.png"),
        res("figures", "table1_metrics.png"),
    ]
    targets += explain_targets()
    targets += stats_targets()
    targets += report_targets()
    if SYNTHETIC:
        targets += [
            res("validation", "registration_vs_truth.tsv"),
            res("validation", "sbr_vs_truth.tsv"),
        ]
    return targets
