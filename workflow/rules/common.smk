# Python shared by every stage file: config and participants validation,
# wildcard constraints, the subject list, named input functions, targets.

import functools
import os

from snakemake.exceptions import WorkflowError

from datxai.batches import subject_batches
from datxai.config import ConfigError, validate_config
from datxai.simulate.cohort import example_subjects

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
# normalize.engine torch runs the registrations in torch (envs/torch.yaml); nipype in envs/recon.yaml
NORMALIZE_ENV = (
    "../../envs/torch.yaml"
    if config["normalize"]["engine"] == "torch"
    else "../../envs/recon.yaml"
)


wildcard_constraints:
    subject=r"sub-[A-Za-z0-9]+",
    setting="|".join(SETTINGS),
    subset="train|val|test",
    repeat=r"[1-9]\d*",


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
    from datxai.participants import load_participants, require_images, ParticipantsError

    sheet = config["cohort"]["participants"]
    try:
        table = load_participants(sheet)
        if config["cohort"]["images"]:
            require_images(table, config["cohort"]["images"], source=sheet)
    except ParticipantsError as exc:
        raise WorkflowError(str(exc))
    return list(table["subject"])


SUBJECTS = _subjects()

# Per-subject stages (simulate, reconstruct, normalise, scale) run as batch jobs of
# about `execution.subjects_per_job` subjects: one process per batch instead of one
# per subject (a job's start-up, mostly imports, costs ~1-2 s, more than
# reconstructing one study), and ~64 jobs per stage for 1306 subjects instead of
# 1306. Each batch is its own rule, `<stage>_b<NNN>`, because a Snakemake rule's
# outputs must follow from its wildcards; the files per subject stay as they are.
# A subject's batch follows from its identifier alone (datxai.batches: a hash, and
# a power-of-two batch count), so adding a subject reruns one batch, not every
# batch after it.
SUBJECTS_PER_JOB = int(config["execution"]["subjects_per_job"])
SUBJECT_BATCHES = subject_batches(SUBJECTS, SUBJECTS_PER_JOB)


def batch_rule(stage, k):
    """Name of batch k's rule of a per-subject stage, e.g. reconstruct_spect_b003."""
    return f"{stage}_b{k:03d}"


def batch_log(stage, k):
    return log(stage, f"batch-{k:03d}.log")


def batch_bench(stage, k):
    return bench(stage, f"batch-{k:03d}.tsv")


def config_digest():
    """sha256 of the resolved config. provenance.json records the config, so it is a
    parameter of write_provenance: any changed setting rewrites it (and reruns verify_inputs).
    """
    import hashlib
    import json

    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


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
    if REPEATS > 1:
        targets += [
            res("evaluate", "table1_repeats.tsv"),
            res("evaluate", "table1_repeats_summary.tsv"),
            res("evaluate", "uncertainty_cases.tsv"),
            res("evaluate", "uncertainty_summary.tsv"),
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


# --- simulate stage ----------------------------------------------------


def montage_subjects():
    """One truly normal and one truly reduced subject (drawn from the config alone, no files)."""
    return (
        list(example_subjects(config["simulate"], config["seed"])) if SYNTHETIC else []
    )


def montage_activity(wildcards):
    return expand(
        res("cohort", "truth", "{subject}_activity.nii.gz"), subject=montage_subjects()
    )


def montage_dicom(wildcards):
    return expand(res("cohort", "dicom", "{subject}.dcm"), subject=montage_subjects())


def montage_truth(wildcards):
    return expand(
        res("cohort", "truth", "{subject}_truth.json"), subject=montage_subjects()
    )


# --- reconstruct stage -------------------------------------------------


def projections_dicom(members):
    """The DICOM files of a batch: the synthetic camera exports, or the user's (cohort.source dicom: projections,
    dicom_recon: reconstructed volumes)."""
    if config["cohort"]["source"] in ("dicom", "dicom_recon"):
        return expand(config["cohort"]["images"], subject=members)
    return expand(res("cohort", "dicom", "{subject}.dcm"), subject=members)


# --- normalize stage ---------------------------------------------------


def _native_path(subject):
    if config["cohort"]["source"] == "nifti":
        return config["cohort"]["images"].format(subject=subject)
    return res("recon", f"{subject}_spect.nii.gz")


def native_images(members):
    """The native-space SPECT of a batch's subjects: reconstructed, or the user's NIfTI (cohort.source nifti)."""
    return [_native_path(s) for s in members]


@functools.lru_cache(maxsize=None)
def template_subjects():
    """The label-balanced subset (visual read, config seed) the cohort template is built from.

    Chosen here, when the DAG is built, so that build_template depends on these
    subjects only: a change to any other subject does not rebuild the template, and
    each normalisation reaches ``normalize.template_subjects`` reconstructions, not
    the whole cohort. The synthetic sheet is drawn in memory exactly as
    simulate_participants writes it; build_template checks the written sheet
    gives the same choice.
    """
    from datxai.config import derive_seed
    from datxai.participants import load_participants, ParticipantsError
    from datxai.register.selection import select_template_subjects

    if SYNTHETIC:
        from datxai.simulate.cohort import draw_cohort, participants

        table = participants(draw_cohort(config["simulate"], config["seed"]))
    else:
        try:
            table = load_participants(config["cohort"]["participants"])
        except ParticipantsError as exc:
            raise WorkflowError(str(exc))
    seed = derive_seed(config["seed"], "normalize", "template")
    try:
        chosen = select_template_subjects(
            table, config["normalize"]["template_subjects"], seed
        )
    except ValueError as exc:  # InputError is a ValueError
        raise WorkflowError(f"normalize.template_subjects: {exc}")
    return tuple(chosen)


def template_candidate_images(wildcards):
    """Native images of the template subjects, in template_subjects() order."""
    return [_native_path(s) for s in template_subjects()]


def template_anchor_sidecar(wildcards):
    """The reconstruction sidecar of the first template subject: the acquisition geometry of the MNI anchor's
    camera (normalize.template_space anchor); none for NIfTI cohorts (the config's simulate.camera then).
    """
    if (
        config["normalize"]["template_space"] != "anchor"
        or config["cohort"]["source"] == "nifti"
    ):
        return []
    return [res("recon", f"{template_subjects()[0]}_spect.json")]


# What the MNI anchor depends on (None when the template is seeded by the atlas alone): the camera without
# its count levels, the grid it is projected from and the reconstruction settings.
TEMPLATE_ANCHOR_PARAMS = (
    {
        "camera": {
            k: v
            for k, v in config["simulate"]["camera"].items()
            if k != "counts_mcounts"
        },
        "phantom_voxel_mm": config["simulate"]["phantom_voxel_mm"],
        "reconstruct": config["reconstruct"],
    }
    if config["normalize"]["template_space"] == "anchor"
    else None
)


def template_image(wildcards):
    """The template subjects are registered to: the user's (normalize.template) or the one built from the cohort."""
    return config["normalize"]["template"] or res("template", "fpcit_template.nii.gz")


def normalized_images(wildcards):
    return expand(
        res("normalized", "{subject}_space-MNI_spect.nii.gz"), subject=SUBJECTS
    )


def affine_jsons(wildcards):
    return expand(res("normalized", "{subject}_affine.json"), subject=SUBJECTS)


def truth_jsons(wildcards):
    return expand(res("cohort", "truth", "{subject}_truth.json"), subject=SUBJECTS)


# --- train stage -------------------------------------------------------


def fc_widths(wildcards):
    """Fully connected layer widths of this setting."""
    return config["model"]["fc_widths"][wildcards.setting]


def train_epochs(wildcards):
    """Number of epochs of this setting (the final model is the last epoch)."""
    return config["train"]["epochs"][wildcards.setting]


def _grid_voxels():
    shape = config["grid"]["shape"]
    return int(shape[0]) * int(shape[1]) * int(shape[2])


def train_mem_mb(wildcards):
    """Host memory: 4 copies of the parameters (weights, gradients, Adam moments) + images + 2 GB."""
    fc1 = int(config["model"]["fc_widths"][wildcards.setting][0])
    params = _grid_voxels() * int(config["model"]["conv_filters"]) * fc1
    images = len(SUBJECTS) * _grid_voxels()
    return 2000 + int((16 * params + 2 * 4 * images) / 1e6)


def train_runtime(wildcards):
    """Minutes: ~2 min per epoch at the paper's 2 mm grid on one GPU (S1: 72 s on a Titan Xp), scaled by grid size."""
    scale = _grid_voxels() / (71 * 90 * 72) * len(SUBJECTS) / 1306
    return int(30 + 2 * train_epochs(wildcards) * max(scale, 0.05))


REPEATS = int(config["train"]["repeats"])
# What a training reads; without `repeats`, so asking for more repeats does not retrain the existing ones.
# What every setting's training shares; the per-setting keys (epochs, fc_widths) reach a
# training job through train_epochs / fc_widths alone, so changing one setting's value
# reruns that setting's chain only.
TRAIN_PARAMS = {
    k: v for k, v in config["train"].items() if k not in ("repeats", "epochs")
}
MODEL_PARAMS = {k: v for k, v in config["model"].items() if k != "fc_widths"}


def repeat_predictions(wildcards):
    """Test-set predictions of every setting's repeats, repeat 0 (the study's model) first."""
    return [
        (
            res("evaluate", f"{s}_predictions.tsv")
            if r == 0
            else res("evaluate", "repeats", f"{s}_repeat-{r}_predictions.tsv")
        )
        for s in SETTINGS
        for r in range(REPEATS)
    ]


def all_predictions(wildcards):
    return expand(res("evaluate", "{setting}_predictions.tsv"), setting=SETTINGS)


def all_histories(wildcards):
    return expand(res("train", "{setting}", "history.tsv"), setting=SETTINGS)


# --- explain stage -----------------------------------------------------

COMPANION_SETTING = "full"


def group_files(kind):
    """Input function factory: one group map per setting, in SETTINGS order."""

    def _files(wildcards):
        return expand(res("group", "{setting}", kind), setting=SETTINGS)

    return _files


def cluster_niftis(wildcards):
    return expand(
        res("group", "{setting}", "clusters.nii.gz"), setting=CLUSTER_SETTINGS
    )


def cluster_tables(wildcards):
    return expand(res("group", "{setting}", "clusters.tsv"), setting=CLUSTER_SETTINGS)


# the voxelwise comparator of the relevance clusters: one test per subset
COMPARATOR_SUBSETS = ["train", "test"]


def comparator_files(name):
    """Input function factory: one comparator output per subset, in COMPARATOR_SUBSETS order."""

    def _files(wildcards):
        return expand(res("comparator", "{subset}", name), subset=COMPARATOR_SUBSETS)

    return _files


def voxelwise_seed(wildcards):
    from datxai.config import derive_seed

    return derive_seed(config["seed"], "voxelwise", wildcards.subset)


def lrp_runtime(wildcards):
    """Minutes: ~1 s per test case at the paper's grid on a GPU, ~20 s on a CPU core pair, plus start-up."""
    voxels = (
        int(config["grid"]["shape"][0])
        * int(config["grid"]["shape"][1])
        * int(config["grid"]["shape"][2])
    )
    return int(10 + len(SUBJECTS) * 0.35 * 20 * voxels / (71 * 90 * 72) / 60)


# what an LRP map depends on: the explain section without batch_size (memory only: maps agree to float32
# rounding, tests/test_explain_lrp.py; the script reads it from the config) and without the audit's settings
LRP_PARAMS = {
    k: v
    for k, v in config["explain"].items()
    if k not in ("batch_size", "faithfulness")
}
AUDIT = config["explain"]["faithfulness"]["enabled"]


def audit_seed(wildcards):
    from datxai.config import derive_seed

    return derive_seed(config["seed"], "audit", wildcards.setting)


def repeat_files(name):
    """Input function factory: a group file of the setting for every repeat, repeat 0 (the study's) first."""

    def _files(wildcards):
        return [res("group", wildcards.setting, name)] + [
            res("group_repeats", wildcards.setting, f"repeat-{r}", name)
            for r in range(1, REPEATS)
        ]

    return _files


def explain_targets():
    """What the explain/group stage contributes to `rule all`."""
    targets = expand(res("relevance", "{setting}"), setting=SETTINGS)
    if AUDIT:
        targets += expand(
            res("figures", "faithfulness_{setting}.png"), setting=SETTINGS
        )
    if REPEATS > 1:
        targets += expand(
            res("group", "{setting}", "mean_heat_clusters.tsv"),
            setting=CLUSTER_SETTINGS,
        )
    targets += expand(res("group", "{setting}", "heat.nii.gz"), setting=SETTINGS)
    targets += cluster_tables(None)
    targets += [
        res("figures", "fig1_relevance.png"),
        res("figures", "fig2_heat_striatum.png"),
        res("figures", "fig3_clusters.png"),
        res("figures", "fig3_voxelwise.png"),
        res("comparator", "methods.tsv"),
    ]
    if COMPANION_SETTING in SETTINGS:
        targets += [
            res("companion", "putamen_relevance.tsv"),
            res("companion", "summary.tsv"),
        ]
    if SYNTHETIC:
        targets += [
            res("validation", "clusters_vs_truth.tsv"),
            res("validation", "clusters_classified.tsv"),
        ]
    return targets


# --- stats stage -------------------------------------------------------

ROI_SETTING = config["stats"]["roi_setting"]
if config["stats"]["roi_clusters"] == "mean_over_repeats" and REPEATS < 2:
    raise ValueError(
        "stats.roi_clusters: mean_over_repeats needs train.repeats > 1 (the clusters of the heat map averaged "
        f"over the training repeats); got train.repeats {REPEATS}"
    )
# the ROIs of the uptake statistics: the study's clusters or those of the mean heat over the repeats
ROI_CLUSTERS = (
    ("clusters.nii.gz", "clusters.tsv")
    if config["stats"]["roi_clusters"] == "study"
    else ("mean_heat_clusters.nii.gz", "mean_heat_clusters.tsv")
)


def stack_runtime(wildcards):
    """Walltime (min) of stack_scaled_images: reading ~0.1 s per gzipped image, with a wide margin."""
    return int(5 + len(SUBJECTS) * 0.1 * _grid_voxels() / (71 * 90 * 72) / 60 * 3)


def scaled_images(wildcards):
    """The scaled, mirrored MNI image of every subject, in SUBJECTS order."""
    return expand(
        res("scaled", "{subject}_space-MNI_desc-scaled_spect.nii.gz"), subject=SUBJECTS
    )


def stats_targets():
    """What the stats stage contributes to `rule all`."""
    return [
        res("stats", "ttests.tsv"),
        res("stats", "roc.tsv"),
        res("stats", "correlation.tsv"),
        res("stats", "focus.json"),
        res("stats", "uptake_statistics.html"),
        res("figures", "fig4_focus_uptake.png"),
        res("figures", "fig5_uptake_vs_sbr.png"),
        res("stats", "sbr_comparator.tsv"),
    ]


# --- report stage ------------------------------------------------------


def provenance_images(wildcards):
    """The cohort's raw inputs that are checksummed: DICOM projections (synthetic) or the user's images."""
    if SYNTHETIC:
        return expand(res("cohort", "dicom", "{subject}.dcm"), subject=SUBJECTS)
    pattern = config["cohort"]["images"]
    return expand(pattern, subject=SUBJECTS) if pattern else []


def hyperparameter_files(wildcards):
    """train/{setting}/hyperparameters.json of every setting (they record the device each model trained on)."""
    return expand(res("train", "{setting}", "hyperparameters.json"), setting=SETTINGS)


def report_targets():
    """What the report stage contributes to `rule all`."""
    return [res("provenance.json"), res("provenance_check.tsv")]
