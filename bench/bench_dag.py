"""DAG construction time and cluster job counts for the paper's cohort (config/paper.yaml, 1306 subjects).

Usage: python bench/bench_dag.py [--repeats 3] [--configfile config/paper.yaml] [--profile profiles/slurm]

* dry run (CLI): wall time of `snakemake -n --quiet rules --profile profiles/slurm
  --configfile config/paper.yaml --config results=<empty tmp dir>` (everything
  pending), median of --repeats runs; includes Python start-up, parsing the
  workflow and building the DAG. A parse-only baseline (`--list-rules`) is also timed.
* DAG (API): Snakemake's own DAG building (`Workflow._build_dag` + `DAG.postprocess`,
  which forms and checks the groups; internal API of Snakemake 9) timed in-process, then the jobs counted twice: per rule (what a
  run without grouping submits: one SLURM job per job) and after grouping with the
  profile's `group-components` (group jobs as Snakemake forms them for submission).
  Jobs that run nothing (rule `all`) are not counted.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def cli_seconds(args: list[str], repeats: int) -> tuple[float, str]:
    times, out = [], ""
    for _ in range(repeats):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=ROOT, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            raise SystemExit(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
        out = proc.stdout
    return statistics.median(times), out


def check_each_group_once():
    """EXPERIMENT (not used by the workflow): Snakemake 9.27's DAG._check_groups loops over
    `self._group.values()`, i.e. over every group once per member job, each time running a
    DFS from every member; this patch makes it check each group once (same DFS per member)."""
    from snakemake.dag import DAG

    original = DAG._check_groups

    def patched(self):
        full = self._group
        self._group = {id(g): g for g in full.values()}  # values only are read
        try:
            original(self)
        finally:
            self._group = full

    DAG._check_groups = patched


def count_jobs(configfile: Path, results: Path, components: dict) -> dict:
    """Build the DAG in-process; per-rule job counts and the group jobs Snakemake would submit."""
    from snakemake.api import SnakemakeApi
    from snakemake_interface_executor_plugins.registry import ExecutorPluginRegistry
    from snakemake.settings.types import (
        ConfigSettings,
        DAGSettings,
        ExecutionSettings,
        GroupSettings,
        OutputSettings,
        ResourceSettings,
        StorageSettings,
    )

    with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
        wf_api = api.workflow(
            resource_settings=ResourceSettings(),
            config_settings=ConfigSettings(configfiles=[configfile], config={"results": str(results)}),
            storage_settings=StorageSettings(),
            snakefile=ROOT / "Snakefile",
            workdir=ROOT,
        )
        api_dag = wf_api.dag(dag_settings=DAGSettings())
        wf = api_dag.workflow_api._workflow  # internal (Snakemake 9): the parsed workflow
        wf.group_settings = GroupSettings(group_components=components)
        # groups are only formed for remote execution or a dry run: act as `snakemake -n`
        wf._executor_plugin = ExecutorPluginRegistry().get_plugin("dryrun")
        wf.execution_settings = ExecutionSettings()
        wf._prepare_dag(forceall=False, ignore_incomplete=False, lock_warn_only=True)
        t0 = time.perf_counter()
        wf._build_dag()
        dag = wf.dag
        wf.async_run(dag.postprocess())  # what execution does next: needrun, groups, group checks
        build_s = time.perf_counter() - t0
        jobs = [j for j in dag.needrun_jobs() if not j.is_norun]
        per_rule = collections.Counter(j.rule.name for j in jobs)
        groups = {id(g): g for j in jobs if (g := dag.get_job_group(j)) is not None}
        per_group = collections.Counter(g.groupid for g in groups.values())
        ungrouped = sum(dag.get_job_group(j) is None for j in jobs)
        return {
            "build_s": build_s,
            "jobs": len(jobs),
            "per_rule": per_rule,
            "per_group": per_group,
            "grouped_rules": sorted({j.rule.name for j in jobs if j.group is not None}),
            "cluster_jobs": ungrouped + len(groups),
            "largest_group": max((len(g.jobs) for g in groups.values()), default=0),
        }


def parse_components(spec: str, profile_components: dict) -> dict:
    if spec == "profile":
        return dict(profile_components)
    if spec == "none":
        return {}
    return {k: int(v) for k, v in (item.split("=") for item in spec.split(","))}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="CLI dry runs (median)")
    ap.add_argument("--configfile", default="config/paper.yaml")
    ap.add_argument("--profile", default="profiles/slurm")
    ap.add_argument(
        "--components",
        nargs="+",
        default=["none", "profile"],
        help="group-components settings to count: none | profile | recon=50,preproc=10 ...",
    )
    ap.add_argument("--skip-cli", action="store_true", help="only the in-process DAG builds")
    ap.add_argument("--check-each-group-once", action="store_true", help="experiment: patch Snakemake's group check")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: one in-process build, JSON out
    a = ap.parse_args(argv)
    profile = yaml.safe_load((ROOT / a.profile / "config.yaml").read_text())
    profile_components = {k: int(v) for k, v in (profile.get("group-components") or {}).items()}

    with tempfile.TemporaryDirectory(prefix="bench_dag_") as tmp:
        results = Path(tmp) / "results"  # empty: every job is pending
        if a.one is not None:
            if a.check_each_group_once:
                import snakemake.api  # noqa: F401  (import order of snakemake's modules)

                check_each_group_once()
            c = count_jobs((ROOT / a.configfile).resolve(), results, parse_components(a.one, profile_components))
            c["per_rule"], c["per_group"] = dict(c["per_rule"]), dict(c["per_group"])
            print("JSON" + json.dumps(c))
            return
        print(f"config {a.configfile}, profile {a.profile} (group-components {profile_components}), {os.cpu_count()} CPUs")
        if not a.skip_cli:
            common = ["--configfile", a.configfile, "--config", f"results={results}"]
            parse_s, _ = cli_seconds(["--list-rules", *common], a.repeats)
            dry_s, out = cli_seconds(["-n", "--quiet", "rules", "--profile", a.profile, *common], a.repeats)
            total = [line for line in out.splitlines() if line.startswith("total")]
            print(f"parse only (snakemake --list-rules): {parse_s:.1f} s; dry run (snakemake -n --profile {a.profile}): "
                  f"{dry_s:.1f} s (medians of {a.repeats}); {total[0] if total else ''}")
        print("| group-components | DAG build (s) | jobs without grouping | SLURM jobs | group jobs |")
        print("|---|---|---|---|---|")
        for spec in a.components:
            comps = parse_components(spec, profile_components)
            extra = ["--check-each-group-once"] if a.check_each_group_once else []
            proc = subprocess.run([sys.executable, __file__, "--configfile", a.configfile, "--profile", a.profile, "--one", spec, *extra],
                                  capture_output=True, text=True)
            line = [x for x in proc.stdout.splitlines() if x.startswith("JSON")]
            if proc.returncode != 0 or not line:
                raise SystemExit(f"in-process build failed for {spec}:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
            c = json.loads(line[0][4:])
            groups = ", ".join(f"{g}: {n}" for g, n in sorted(c["per_group"].items()))
            print(f"| {comps or 'none (1 per subject)'} | {c['build_s']:.1f} | {c['jobs']} | {c['cluster_jobs']} | {groups} |")


if __name__ == "__main__":
    main()
