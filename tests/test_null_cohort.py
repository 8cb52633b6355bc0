"""The null cohort (config/null.yaml: striatal loss only, nothing planted) through the chain at the tiny scale:
every extrastriatal finding must be classed spill-over or spurious, never planted."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.workflow


def test_null_cohort_findings_are_spillover_or_spurious(tmp_path):
    results = tmp_path / "results"
    # fewer epochs than tiny.yaml's 15: the classes do not depend on how well the nets learn
    target = results / "validation" / "clusters_classified.tsv"
    epochs = tmp_path / "epochs.yaml"
    epochs.write_text("train:\n  epochs: {full: 6, striatum: 6, nostriatum: 6}\n")
    # a flag before the targets ends --config's list of name=value pairs
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--resources", "gpu=1", "--configfile",
           str(ROOT / "config" / "config.yaml"), str(ROOT / "tests" / "configs" / "tiny.yaml"),
           str(ROOT / "config" / "null.yaml"), str(epochs), "--config", f"results={results}", "--rerun-incomplete",
           str(target), str(results / "comparator" / "methods.tsv")]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, PYTHONHASHSEED="0"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    for p in (results / "cohort" / "truth").glob("sub-*_truth.json"):
        assert json.loads(p.read_text())["planted"] == []
    classes = pd.read_csv(target, sep="\t")
    assert set(classes["class"]) <= {"spill-over", "spurious"}, classes
    assert (classes["d_planted"].abs() < 1e-9).all()
    validation = pd.read_csv(results / "validation" / "clusters_vs_truth.tsv", sep="\t")
    assert not (validation["hit"] == "yes").any()
    assert pd.read_csv(results / "validation" / "detectability.tsv", sep="\t").empty
