"""The whole chain on the tiny config, through Snakemake, on the CPU.

One run is shared by the tests of this module (it takes minutes); each test
then checks one contract of the results layout or of rerunning.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.workflow


def snakemake(results: Path, *args, check=True, configfiles=()):
    cmd = [
        sys.executable, "-m", "snakemake", "--cores", "2", "--resources", "gpu=1",
        "--configfile", str(ROOT / "config" / "config.yaml"), str(ROOT / "tests" / "configs" / "tiny.yaml"),
        *[str(c) for c in configfiles], "--config", f"results={results}", *args,
    ]
    env = dict(os.environ, PYTHONHASHSEED="0")
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return proc


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    results = tmp_path_factory.mktemp("tiny") / "results"
    snakemake(results)
    return results


def test_every_stage_wrote_its_outputs(tiny_run):
    r = tiny_run
    subjects = pd.read_csv(r / "cohort" / "participants.tsv", sep="\t")["subject"]
    assert len(subjects) == 30
    for s in subjects:
        assert (r / "recon" / f"{s}_spect.nii.gz").is_file()
        assert (r / "normalized" / f"{s}_space-MNI_spect.nii.gz").is_file()
        assert (r / "scaled" / f"{s}_space-MNI_desc-scaled_spect.nii.gz").is_file()
    assert (r / "template" / "fpcit_template.nii.gz").is_file()
    sbr = pd.read_csv(r / "quant" / "sbr.tsv", sep="\t")
    assert {"subject", "sbr_putamen_ipsi", "sbr_putamen_contra", "mirrored"} <= set(sbr.columns)
    assert (sbr["sbr_putamen_ipsi"] <= sbr["sbr_putamen_contra"] + 1e-9).all()
    split = pd.read_csv(r / "split" / "split.tsv", sep="\t")
    assert set(split["subset"]) == {"train", "val", "test"} and split["subject"].is_unique


def test_table1_and_predictions(tiny_run):
    t1 = pd.read_csv(tiny_run / "evaluate" / "table1.tsv", sep="\t")
    assert set(t1["setting"]) == {"full", "striatum", "nostriatum"}
    for col in ("accuracy", "sensitivity", "specificity", "ppv", "npv"):
        vals = t1[col].dropna()
        assert ((vals >= 0) & (vals <= 1)).all()
    pred = pd.read_csv(tiny_run / "evaluate" / "full_predictions.tsv", sep="\t")
    assert {"subject", "label", "predicted", "p_reduced"} <= set(pred.columns)


def test_relevance_groups_clusters_and_stats(tiny_run):
    import nibabel as nib

    for setting in ("full", "striatum", "nostriatum"):
        maps = sorted((tiny_run / "relevance" / setting).glob("sub-*_relevance.nii.gz"))
        assert maps, f"no relevance maps for {setting}"
        data = np.asarray(nib.load(maps[0]).dataobj)
        assert np.isfinite(data).all() and np.any(data)
        assert (tiny_run / "group" / setting / "heat.nii.gz").is_file()
    for name in ("uptake.tsv", "ttests.tsv", "roc.tsv", "correlation.tsv", "ancova.tsv"):
        assert (tiny_run / "stats" / name).is_file()
    roc = pd.read_csv(tiny_run / "stats" / "roc.tsv", sep="\t")
    assert {"cluster", "subset", "n_reduced", "n_normal", "auc", "auc_ci_low", "auc_ci_high", "p"} <= set(roc.columns)
    assert (tiny_run / "provenance.json").is_file()
    assert (tiny_run / "validation" / "clusters_vs_truth.tsv").is_file()


@pytest.fixture(scope="module")
def tiny_report(tiny_run):
    """The auditable report of the tiny run, as a zip (``snakemake --report x.zip``), inside results/."""
    report = tiny_run / "report.zip"
    snakemake(tiny_run, "--report", str(report))
    return report


def _planted_identifiers(results: Path) -> set[str]:
    """The fake DICOM identifiers the synthetic camera wrote (names, ids, dates, institution)."""
    import json

    identifiers = set()
    for truth in (results / "cohort" / "truth").glob("sub-*_truth.json"):
        ident = json.loads(truth.read_text())["dicom_identifiers"]
        values = [str(v) for v in ident.values() if v]
        values += [part for v in values for part in v.split("^")]  # name components on their own
        identifiers |= {v for v in values if len(v) >= 6}  # shorter strings match by chance
    return identifiers


def _file_blobs(path: Path):
    """(name, bytes) of a file; gzip is decompressed and every member of a zip is yielded."""
    import gzip
    import zipfile

    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            for member in zf.namelist():
                yield f"{path}:{member}", zf.read(member)
        return
    blob = path.read_bytes()
    yield str(path), gzip.decompress(blob) if path.suffix == ".gz" else blob


def test_report_builds_with_every_category(tiny_report):
    import zipfile

    with zipfile.ZipFile(tiny_report) as zf:
        names = zf.namelist()
        html = b"".join(zf.read(n) for n in names if n.endswith((".html", ".js"))).decode("utf-8", "replace")
    assert any(n.endswith("report.html") for n in names)
    for category in ("Cohort", "Preprocessing QC", "Classification", "Relevance", "Uptake statistics",
                     "Validation against the synthetic truth", "Provenance"):
        assert category in html, f"report lacks the category {category!r}"
    assert any(n.endswith("table1.tsv") for n in names)


def test_no_personal_data_reaches_results(tiny_run, tiny_report):
    """Planted DICOM identifiers never appear in any file under results/ (logs and the zipped report included)."""
    identifiers = _planted_identifiers(tiny_run)
    assert identifiers, "the synthetic truth lists no planted identifiers"
    skip = {tiny_run / "cohort" / "dicom", tiny_run / "cohort" / "truth"}  # the camera export itself
    leaks, scanned = [], 0
    for path in tiny_run.rglob("*"):
        if not path.is_file() or any(p in path.parents for p in skip):
            continue
        for name, blob in _file_blobs(path):
            scanned += 1
            leaks += [f"{name}: {i}" for i in identifiers if i.encode() in blob]
    assert scanned > 100 and (tiny_run / "logs").is_dir()
    assert not leaks, leaks[:5]


def test_second_run_does_nothing(tiny_run):
    out = snakemake(tiny_run, "-n").stdout
    assert "Nothing to be done" in out or "nothing to be done" in out.lower()


@pytest.mark.parametrize("override, setting", [("train:\n  epochs: {full: 16, striatum: 15, nostriatum: 15}\n", "full"),
                                               ("model:\n  fc_widths: {nostriatum: [16, 8]}\n", "nostriatum")])
def test_one_settings_training_change_reruns_that_setting_only(tiny_run, tmp_path, override, setting):
    """A per-setting key (train.epochs.<setting>, model.fc_widths.<setting>) reruns that setting's training,
    evaluation and maps, not the other settings' (a dry run on the finished tiny run)."""
    cfg = tmp_path / "override.yaml"
    cfg.write_text(override)
    out = snakemake(tiny_run, "-n", configfiles=[cfg]).stdout
    per_rule, current = {}, None
    for line in out.splitlines():
        m = re.match(r"\s*(?:local)?rule (\w+):$", line)
        if m:
            current = per_rule.setdefault(m.group(1), [])
        m = re.match(r"\s+output: (.*)$", line)
        if m and current is not None:
            current.append(m.group(1))
    for rule in ("train_cnn", "evaluate_cnn", "compute_relevance"):
        settings = sorted({m for o in per_rule.get(rule, []) for m in re.findall(r"(full|nostriatum|striatum)", o)})
        assert settings == [setting], f"{rule} reruns for {settings}"
    assert not {"build_dataset", "split_cohort", "stack_scaled_images"} & set(per_rule), sorted(per_rule)


# The rerun matrix: for each config key, the rules a dry run schedules on the finished tiny run -- the minimal set,
# as README's "Rerunning after a change" lists it. Per-setting rules carry the settings that rerun; batch rules
# (<stage>_bNNN) count under their stage. Every change also reruns `all`, `verify_inputs` and `write_provenance`
# (provenance.json records the resolved config).
S3, G = ("full", "nostriatum", "striatum"), ("full", "nostriatum")
AFTER_CLUSTERS = {"find_clusters": G, "cluster_uptake": (), "compute_uptake_statistics": (), "validate_clusters": (),
                  "plot_relevance_figures": (), "plot_stats_figures": (), "compare_methods": (), "validate_findings": ()}
# the voxelwise comparator (train, test) reads the stack of scaled images, the split and the sheet
AFTER_VOXELWISE = {"voxelwise_comparator": (), "compare_methods": (), "validate_clusters": (), "validate_findings": ()}
AFTER_MAPS = {"compute_relevance": S3, "group_relevance": S3, "companion_analyses": (), "audit_relevance": S3,
              **AFTER_CLUSTERS}
AFTER_DATASET = {"build_dataset": S3, "train_cnn": S3, "evaluate_cnn": S3, "collect_table1": (),
                 "plot_learning_curves": (), "compare_sbr_classifier": (), **AFTER_MAPS, **AFTER_VOXELWISE}
AFTER_SCALE = {"scale_and_quantify": (), "stack_scaled_images": (), "collect_sbr": (), "validate_sbr": (),
               **AFTER_DATASET}
AFTER_NORMALIZE = {"normalize_to_mni": (), "collect_registration": (), "validate_registration": (),
                   "plot_normalize_qc": (), **AFTER_SCALE}
RERUN_MATRIX = {
    "reconstruct.cutoff_cycles_per_cm": ("reconstruct: {cutoff_cycles_per_cm: 1.0}",
                                         {"reconstruct_spect": (), "build_template": (), **AFTER_NORMALIZE}),
    "normalize.smooth_fwhm_mm": ("normalize: {smooth_fwhm_mm: 6.0}", {"build_template": (), **AFTER_NORMALIZE}),
    "scale.reference_percentile": ("scale: {reference_percentile: 70}", AFTER_SCALE),
    # the putamen ROI decides the affected side, by which every scaled image is mirrored
    "quantify.putamen_margin_mm": ("quantify: {putamen_margin_mm: 3.0}", AFTER_SCALE),
    "split.n_draws": ("split: {n_draws: 21}", {"split_cohort": (), **AFTER_DATASET}),
    "train.epochs.full": ("train: {epochs: {full: 16, striatum: 15, nostriatum: 15}}",
                          {"train_cnn": ("full",), "evaluate_cnn": ("full",), "compute_relevance": ("full",),
                           "audit_relevance": ("full",), "group_relevance": ("full",), "find_clusters": ("full",), "collect_table1": (),
                           "plot_learning_curves": (), "companion_analyses": (), "plot_relevance_figures": (),
                           "validate_clusters": (), "compare_methods": (), "validate_findings": ()}),
    "model.fc_widths.striatum": ("model: {fc_widths: {striatum: [16, 8]}}",
                                 {"train_cnn": ("striatum",), "evaluate_cnn": ("striatum",),
                                  "compute_relevance": ("striatum",), "group_relevance": ("striatum",),
                                  "audit_relevance": ("striatum",),
                                  "collect_table1": (), "plot_learning_curves": (), "plot_relevance_figures": ()}),
    "explain.epsilon": ("explain: {epsilon: 2.0e-4}", AFTER_MAPS),
    "explain.target": ("explain: {target: reduced}", AFTER_MAPS),
    "explain.batch_size": ("explain: {batch_size: 2}", {}),  # memory only
    "explain.faithfulness.steps": ("explain: {faithfulness: {steps: 8}}", {"audit_relevance": S3}),
    "group.percentile": ("group: {percentile: 90}", AFTER_CLUSTERS),
    "group.min_cluster_ml": ("group: {min_cluster_ml: 2.0}", {**AFTER_CLUSTERS, **AFTER_VOXELWISE}),
    "group.voxelwise.n_perm": ("group: {voxelwise: {n_perm: 499}}", AFTER_VOXELWISE),
    "group.putamen_select": ("group: {putamen_select: relevance}", {"companion_analyses": ()}),
    "stats.ttest": ("stats: {ttest: student}", {"compute_uptake_statistics": (), "plot_stats_figures": ()}),
    "stats.focus": ("stats: {focus: {label: Temporal_Pole, side: I}}",
                    {"compute_uptake_statistics": (), "plot_stats_figures": ()}),
}


def _scheduled(out: str) -> dict:
    """{rule (batch suffix dropped): tuple of the settings it runs for} from a dry run's job list."""
    jobs, current = {}, None
    for line in out.splitlines():
        m = re.match(r"\s*(?:local)?rule (\w+):$", line)
        if m:
            current = jobs.setdefault(re.sub(r"_b\d{3}$", "", m.group(1)), set())
        m = re.match(r"\s+wildcards: .*setting=(\w+)", line)
        if m and current is not None:
            current.add(m.group(1))
    return {rule: tuple(sorted(settings)) for rule, settings in jobs.items()}


@pytest.mark.parametrize("key", sorted(RERUN_MATRIX))
def test_rerun_matrix(tiny_run, tmp_path, key):
    """A change of ``key`` schedules exactly its minimal set of rules (README, "Rerunning after a change")."""
    override, expected = RERUN_MATRIX[key]
    cfg = tmp_path / "override.yaml"
    cfg.write_text(override + "\n")
    got = _scheduled(snakemake(tiny_run, "-n", configfiles=[cfg]).stdout)
    want = {"all": (), "verify_inputs": (), "write_provenance": (), **expected}
    assert got == want, f"{key}: extra {sorted(set(got) - set(want))}, missing {sorted(set(want) - set(got))}, " \
                        f"settings differ {sorted(r for r in set(got) & set(want) if got[r] != want[r])}"


def test_a_new_subject_reruns_one_batch(tiny_run, tmp_path):
    """A growing cohort (source: nifti, a user template): one subject more on the sheet reruns the one normalise
    and scale batch it joins (datxai.batches: membership by a hash of the id), not every batch after it."""
    import yaml

    from datxai.batches import batch_of, n_batches

    parts = pd.read_csv(tiny_run / "cohort" / "participants.tsv", sep="\t")
    sheet = tmp_path / "participants.tsv"
    new = "sub-0015"  # in the middle of the sorted ids: consecutive slices would move every later subject
    parts[parts.subject != new].to_csv(sheet, sep="\t", index=False)
    cfg = tmp_path / "nifti.yaml"
    images = tmp_path / "images"  # the user's folder: an image per subject of the sheet (the reader checks both)
    images.mkdir()
    for s in parts.subject[parts.subject != new]:
        (images / f"{s}.nii.gz").symlink_to(tiny_run / "recon" / f"{s}_spect.nii.gz")
    cfg.write_text(yaml.safe_dump({
        "cohort": {"source": "nifti", "participants": str(sheet), "images": str(images / "{subject}.nii.gz")},
        "normalize": {"template": str(tiny_run / "template" / "fpcit_template.nii.gz")}}))
    results = tmp_path / "results"

    def targets(subjects):
        return [str(results / "scaled" / f"{s}_space-MNI_desc-scaled_spect.nii.gz") for s in subjects]

    # a flag before the targets ends --config's list of name=value pairs
    snakemake(results, "--keep-going", *targets(parts.subject[parts.subject != new]), configfiles=[cfg])
    parts.to_csv(sheet, sep="\t", index=False)
    (images / f"{new}.nii.gz").symlink_to(tiny_run / "recon" / f"{new}_spect.nii.gz")
    out = snakemake(results, "-n", *targets(parts.subject), configfiles=[cfg]).stdout
    planned = set(re.findall(r"^\s*(?:local)?rule (\w+):$", out, re.M))
    k = batch_of(new, n_batches(len(parts), 8))
    assert n_batches(len(parts) - 1, 8) == n_batches(len(parts), 8)
    assert planned == {f"normalize_to_mni_b{k:03d}", f"scale_and_quantify_b{k:03d}"}, sorted(planned)


def test_putamen_selection_reruns_the_companion_analysis_only(tiny_run, tmp_path):
    """group.putamen_select (S2's putamen relevance) is read by the companion analysis, not by LRP."""
    cfg = tmp_path / "override.yaml"
    cfg.write_text("group:\n  putamen_select: relevance\n")
    out = snakemake(tiny_run, "-n", configfiles=[cfg]).stdout
    planned = set(re.findall(r"^\s*(?:local)?rule (\w+):$", out, re.M))
    assert "companion_analyses" in planned
    assert not planned & {"compute_relevance", "train_cnn", "evaluate_cnn", "group_relevance", "find_clusters"}, planned


def test_torch_engine_normalises_like_nipype(tiny_run, tmp_path):
    """normalize.engine torch through its rule: the first batch redone on a copy, fits as the nipype run's."""
    results = tmp_path / "results"
    shutil.copytree(tiny_run, results)  # copy2 keeps the mtimes: nothing upstream is out of date
    engine = tmp_path / "torch_engine.yaml"
    engine.write_text("normalize: {engine: torch, device: cpu}\n")
    rule = "normalize_to_mni_b000"
    snakemake(results, "--rerun-triggers", "mtime", "--forcerun", rule, "--until", rule, configfiles=[engine])
    assert "torch engine, device cpu" in (results / "logs" / "normalize_to_mni" / "batch-000.log").read_text()
    points = np.random.default_rng(0).normal([0, -18, 11], 30, (500, 3))  # brain-sized cloud about the grid centre
    from datxai.batches import subject_batches

    first = next(iter(subject_batches([f"sub-{i:04d}" for i in range(1, 31)], 8).items()))  # (0, its subjects)
    assert first[0] == 0
    redone = sorted((results / "normalized").glob("*_affine.json"), key=lambda p: p.stat().st_mtime)[-len(first[1]):]
    assert sorted(p.name.split("_")[0] for p in redone) == first[1]
    for path in redone:
        new, old = json.loads(path.read_text()), json.loads((tiny_run / "normalized" / path.name).read_text())
        assert new["flags"] == old["flags"] and new["fallback"] == old["fallback"]
        a, b = np.asarray(new["matrix"]), np.asarray(old["matrix"])
        disp = np.linalg.norm((np.c_[points, np.ones(500)] @ (a - b).T)[:, :3], axis=1).mean()
        # measured (8 subjects): 7 of 8 within 4e-7 mm; one fit stopped 2 iterations earlier at the 8 mm level (a step at the
        # tolerance went the other way) and ended 0.0018 mm away. 0.01 mm is 1/600 of the tiny grid's voxel.
        assert disp < 0.01, (path.name, disp)
