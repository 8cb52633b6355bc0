"""The whole study on the embedded default (config/config.yaml: 300 synthetic subjects), as `make demo` runs it.

6-14 minutes on 2 cores, with the machine's speed (BENCHMARKS.md). Checks the study's acceptance points on a cohort
whose truth is known (fixed seed, so the figures are reproducible):
Table 1 keeps S1's ordering with the no-striatum net above chance, the
no-striatum clusters hit planted extrastriatal regions, and a second run does
nothing. ``DATXAI_SKIP_DEMO=1`` skips it (e.g. while iterating on unit tests).
"""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.workflow, pytest.mark.skipif(os.environ.get("DATXAI_SKIP_DEMO", "") not in ("", "0"),
                                                       reason="DATXAI_SKIP_DEMO is set")]


def snakemake(results: Path, *args):
    cmd = [sys.executable, "-m", "snakemake", "--profile", "profiles/local", "--cores", "2",
           "--configfile", str(ROOT / "config" / "config.yaml"), "--config", f"results={results}", *args]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, PYTHONHASHSEED="0"))
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-8000:]}"
    return proc


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    results = tmp_path_factory.mktemp("demo") / "results"
    snakemake(results)
    return results


def test_table1_ordering_and_nostriatum_above_chance(demo):
    """S1: full 97.0, striatum 95.7, without striatum 69.3 % accuracy.

    What held over 3 training seeds x 2 instruction sets (numerics.cpu_isa avx2 / native on an AVX-512 CPU;
    BENCHMARKS.md, "Reproducibility"): full 0.960-0.987, striatum 0.973 (all six), nostriatum 0.867-0.973
    (its CI's lower end >= 0.77). The cohort of the DICOM geometry (session 9) gives 0.973 / 0.973 / 0.653
    (nostriatum CI [0.541, 0.751]: its validation accuracy swings between epochs and the last is kept). The strict S1 order full >= nostriatum held with zero margin in one of the
    six; that nostriatum does not beat both others held with a margin of >= 1 test case. The planted
    extrastriatal reductions are strong in this cohort, so nostriatum sits far above S1's 69 %.
    """
    t1 = pd.read_csv(demo / "evaluate" / "table1.tsv", sep="\t").set_index("setting")
    print("\n[demo] Table 1:\n" + t1[["n", "accuracy", "accuracy_ci_low", "accuracy_ci_high",
                                     "sensitivity", "specificity"]].round(3).to_string())
    acc = t1["accuracy"]
    assert t1.loc["nostriatum", "accuracy_ci_low"] > 0.5, "the no-striatum CNN is not above chance"
    assert acc["full"] >= 0.9 and acc["striatum"] >= 0.9, acc.to_dict()
    assert max(acc["full"], acc["striatum"]) >= acc["nostriatum"], acc.to_dict()
    assert (t1["n"] == t1.loc["full", "n"]).all() and t1.loc["full", "n"] >= 60


def test_nostriatum_clusters_hit_planted_regions(demo):
    """Over 3 training seeds x 2 instruction sets (explain.target: margin) the nostriatum clusters always hit
    Insular_Cortex [C] and Temporal_Pole [I], in three of six also Insular_Cortex [I]; 0-1 spurious clusters."""
    v = pd.read_csv(demo / "validation" / "clusters_vs_truth.tsv", sep="\t", keep_default_na=False)
    ns = v[v["setting"] == "nostriatum"]
    hits = ns[ns["hit"] == "yes"]
    found = set(hits.planted_region + "[" + hits.side + "]")
    print(f"\n[demo] nostriatum clusters: {len(hits)} planted (region, side) hit ({', '.join(sorted(found))}); "
          f"{(ns['hit'] == 'spurious').sum()} spurious clusters")
    assert {"Insular_Cortex[C]", "Temporal_Pole[I]"} <= found and (ns["hit"] == "spurious").sum() <= 1, ns.to_string()


def test_putamen_relevance_sign_classifies_like_s2(demo):
    """S2: the sign of the mean ipsilateral putamen relevance as a classifier, 96.9 % accuracy (spec 96.0 %).

    With explain.target: margin (the log-odds) the classifier held over 3 training seeds x 2 instruction
    sets on the demo: sensitivity 0.865-0.973, specificity 0.895-1.000 (BENCHMARKS.md); with the single
    'reduced' logit it swung 0.297-0.838 with the seed and the CPU. 0.8 lies 2-3 test cases below both minima.
    """
    summary = pd.read_csv(demo / "companion" / "summary.tsv", sep="\t").set_index("classifier")
    sign = summary.loc["putamen_sign"]
    print(f"\n[demo] putamen-sign classifier: accuracy {sign.accuracy:.3f}, sensitivity {sign.sensitivity:.3f}, "
          f"specificity {sign.specificity:.3f} (n = {sign.n})")
    assert sign.sensitivity >= 0.8 and sign.specificity >= 0.8, summary.to_string()


def test_second_run_does_nothing(demo):
    assert "Nothing to be done" in snakemake(demo, "-n").stdout
