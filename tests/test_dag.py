"""The DAG's shape, from a dry run (seconds, nothing is executed): the cohort template
depends on its label-balanced subjects only, chosen as build_template will choose them."""

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml
from snakemake.utils import update_config

from datxai.config import derive_seed, validate_config
from datxai.register.template import select_template_subjects
from datxai.simulate.cohort import draw_cohort, participants

ROOT = Path(__file__).resolve().parents[1]


def _merged_config() -> dict:
    """config.yaml with tiny.yaml laid over it as Snakemake merges config files, then validated (defaults filled)."""
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    update_config(cfg, yaml.safe_load((ROOT / "tests" / "configs" / "tiny.yaml").read_text()))
    return validate_config(cfg, source="config.yaml + tiny.yaml")


def test_template_depends_on_its_subjects_only(tmp_path):
    cmd = [sys.executable, "-m", "snakemake", "-n", "--cores", "1",
           "--configfile", str(ROOT / "config" / "config.yaml"), str(ROOT / "tests" / "configs" / "tiny.yaml"),
           "--config", f"results={tmp_path / 'results'}", "--forcerun", "build_template"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, PYTHONHASHSEED="0"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    block = re.search(r"rule build_template:\n(.*?)\n\n", proc.stdout, re.S)
    assert block, proc.stdout[-3000:]
    inputs = re.search(r"input: (.*)", block.group(1)).group(1).split(", ")
    recon = sorted(Path(p).name.split("_")[0] for p in inputs if "/recon/" in p)

    cfg = _merged_config()
    n = cfg["normalize"]["template_subjects"]
    expected = select_template_subjects(participants(draw_cohort(cfg["simulate"], cfg["seed"])), n,
                                        derive_seed(cfg["seed"], "normalize", "template"))
    assert n < cfg["simulate"]["n_subjects"]
    assert recon == sorted(expected) and len(recon) == n
