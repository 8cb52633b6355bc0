"""The DAG's shape, from a dry run (seconds, nothing is executed): the cohort template
depends on its label-balanced subjects only, chosen as build_template will choose them;
per-subject stages run as batch rules that together cover every subject once."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.utils import update_config

from datxai.batches import subject_batches
from datxai.config import derive_seed, validate_config
from datxai.register.template import select_template_subjects
from datxai.simulate.cohort import draw_cohort, participants

ROOT = Path(__file__).resolve().parents[1]


def _merged_config() -> dict:
    """config.yaml with tiny.yaml laid over it as Snakemake merges config files, then validated (defaults filled)."""
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    update_config(cfg, yaml.safe_load((ROOT / "tests" / "configs" / "tiny.yaml").read_text()))
    return validate_config(cfg, source="config.yaml + tiny.yaml")


def _dry_run(results: Path, **env) -> str:
    cmd = [sys.executable, "-m", "snakemake", "-n", "--cores", "1",
           "--configfile", str(ROOT / "config" / "config.yaml"), str(ROOT / "tests" / "configs" / "tiny.yaml"),
           "--config", f"results={results}"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONHASHSEED="0", **env))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory) -> str:
    """Console output of a dry run of the tiny config (every job pending)."""
    return _dry_run(tmp_path_factory.mktemp("dag") / "results")


def _jobs(stdout: str) -> dict:
    """{rule: [{"input": [...], "output": [...]}, ...]} from the dry run's job blocks."""
    jobs, current = {}, None
    for line in stdout.splitlines():
        m = re.match(r"\s*(?:local)?rule (\S+):$", line)
        if m:
            current = {"input": [], "output": []}
            jobs.setdefault(m.group(1), []).append(current)
            continue
        m = re.match(r"\s+(input|output): (.*)$", line)
        if m and current is not None:
            current[m.group(1)] = m.group(2).split(", ")
    return jobs


@pytest.mark.parametrize("stage, folder", [("simulate_subject", "dicom"), ("reconstruct_spect", "recon"),
                                           ("normalize_to_mni", "normalized"), ("scale_and_quantify", "scaled")])
def test_per_subject_stages_run_in_batches_covering_every_subject_once(dry_run, stage, folder):
    cfg = _merged_config()
    n, per_job = cfg["simulate"]["n_subjects"], cfg["execution"]["subjects_per_job"]
    jobs = _jobs(dry_run)
    assert stage not in jobs  # no rule of one job per subject
    names = sorted(r for r in jobs if r.startswith(f"{stage}_b"))
    expected = subject_batches([f"sub-{i:04d}" for i in range(1, n + 1)], per_job)  # by a hash of the id
    assert names == [f"{stage}_b{k:03d}" for k in expected]
    for name, (k, members) in zip(names, expected.items()):
        (job,) = jobs[name]  # one job per batch rule
        got = sorted({Path(p).name.split("_")[0].split(".")[0] for p in job["output"] if f"/{folder}/" in p})
        assert got == members, name
    flat = sorted(s for b in expected.values() for s in b)
    assert flat == [f"sub-{i:04d}" for i in range(1, n + 1)]  # every subject exactly once


def test_template_depends_on_its_subjects_only(dry_run):
    block = re.search(r"rule build_template:\n(.*?)\n\n", dry_run, re.S)
    assert block, dry_run[-3000:]
    inputs = re.search(r"input: (.*)", block.group(1)).group(1).split(", ")
    recon = sorted(Path(p).name.split("_")[0] for p in inputs if "/recon/" in p and p.endswith(".nii.gz"))
    sidecars = [Path(p).name for p in inputs if "/recon/" in p and p.endswith(".json")]

    cfg = _merged_config()
    n = cfg["normalize"]["template_subjects"]
    expected = select_template_subjects(participants(draw_cohort(cfg["simulate"], cfg["seed"])), n,
                                        derive_seed(cfg["seed"], "normalize", "template"))
    assert n < cfg["simulate"]["n_subjects"]
    assert recon == sorted(expected) and len(recon) == n
    # the MNI anchor's camera geometry comes from one template subject's reconstruction sidecar
    assert len(sidecars) == 1 and sidecars[0].split("_")[0] in expected
