"""The whole default demo on a fresh results folder, where its time went, and the no-change rerun.

Usage: python bench/bench_demo.py [--results DIR] [--cores 2] [--noop-repeats 10]

* demo: wall time of ``snakemake --profile profiles/local --configfile config/config.yaml
  --cores N --config results=DIR`` on an empty DIR (default: a new temporary folder,
  removed afterwards unless --results is given).
* phases, from the run's own files (modification times): up to the three datasets
  (``dataset/<setting>/train.npy``), from there to the last trained model
  (``train/<setting>/model.pt``; the trainings and what runs between them), and the rest.
* CPU seconds summed over the benchmark files of the expensive rules.
* no-change rerun: the same command again, --noop-repeats times; each must print
  "Nothing to be done"; min / median / max wall.
* machine speed: this VM's speed varies by up to ~1.8x within the hour, so one
  reference training step (demo grid, batch 8, fused Adam, 2 threads) is timed
  before and after; compare runs only at similar step times.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ("full", "striatum", "nostriatum")
CPU_RULES = ("simulate_subject", "reconstruct_spect", "normalize_to_mni", "scale_and_quantify",
             "build_template", "stack_scaled_images", "train_cnn", "compute_relevance")


def reference_step_ms() -> float:
    """Median ms of one training step at the demo grid (bench_train's step, fused Adam, 2 threads)."""
    import torch

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_train import paper_steps

    torch.set_num_threads(2)
    return paper_steps("cpu", 10, amp=False, shape=(24, 30, 24), fused=True) * 1e3


def snakemake_cmd(results: Path, cores: int) -> list[str]:
    return [sys.executable, "-m", "snakemake", "--profile", "profiles/local", "--cores", str(cores),
            "--configfile", "config/config.yaml", "--config", f"results={results}"]


def run(cmd: list[str], what: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{what} failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-4000:]}")
    return seconds, proc.stdout + proc.stderr


def cpu_seconds(results: Path) -> dict[str, float]:
    """Summed ``cpu_time`` of each rule's benchmark files (batch rules: all batches)."""
    out = {}
    for rule in CPU_RULES:
        files = list((results / "benchmarks" / rule).glob("*.tsv")) + list((results / "benchmarks").glob(f"{rule}.tsv"))
        total = 0.0
        for f in files:
            with open(f, newline="") as fh:
                rows = list(csv.DictReader(fh, delimiter="\t"))
            total += sum(float(r["cpu_time"]) for r in rows if r.get("cpu_time") not in (None, "", "NA", "-"))
        if files:
            out[rule] = total
    return out


def phases(results: Path, start: float, end: float) -> list[tuple[str, float]]:
    datasets = max((results / "dataset" / s / "train.npy").stat().st_mtime for s in SETTINGS)
    models = max((results / "train" / s / "model.pt").stat().st_mtime for s in SETTINGS)
    return [("up to the three datasets", datasets - start), ("datasets -> last trained model", models - datasets),
            ("the rest (LRP, clusters, statistics, figures)", end - models)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, help="empty or new folder to run in (kept); default: a temporary one")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--noop-repeats", type=int, default=10)
    args = ap.parse_args()
    keep = args.results is not None
    results = (args.results or Path(tempfile.mkdtemp(prefix="datxai-bench-demo-")) / "results").resolve()
    if results.exists() and any(results.iterdir()):
        raise SystemExit(f"{results}: not empty; the demo is timed on a fresh results folder")
    try:
        step_before = reference_step_ms()
        start = time.time()
        demo_s, _ = run(snakemake_cmd(results, args.cores), "the demo")
        end = time.time()
        noop = []
        for _ in range(args.noop_repeats):
            s, out = run(snakemake_cmd(results, args.cores), "the no-change rerun")
            if "Nothing to be done" not in out:
                raise SystemExit("the rerun found work to do: the demo is not reproducible as a no-op\n" + out[-2000:])
            noop.append(s)
        step_after = reference_step_ms()
        print(f"reference training step: {step_before:.0f} ms before, {step_after:.0f} ms after")
        print(f"| part | seconds |\n|---|---|\n| whole demo (wall) | {demo_s:.1f} |")
        for name, s in phases(results, start, end):
            print(f"| {name} | {s:.1f} |")
        for rule, s in cpu_seconds(results).items():
            print(f"| CPU-s {rule} | {s:.1f} |")
        if noop:
            print(f"| no-change rerun, {len(noop)} runs: min / median / max | {min(noop):.2f} / "
                  f"{statistics.median(noop):.2f} / {max(noop):.2f} |")
    finally:
        if not keep:
            shutil.rmtree(results.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
