"""The workflow on a real (single-node) SLURM cluster through profiles/slurm.

tests/slurm/start_local_slurm.sh starts munge, MariaDB + slurmdbd, slurmctld and
slurmd with two fake GPUs declared as GRES (root, no systemd: what CI has); the
finalizer stops them by their pid files (tests/slurm/stop_local_slurm.sh). The
micro config then runs through `snakemake --profile <merged>`, where <merged> is
profiles/slurm/config.yaml with the site-specific entries of
tests/slurm/profile/config.yaml merged in (partition/account names, 2 cores,
fast status polling). Checked, from SLURM's accounting and Snakemake's own
dry-run and --summary output (never from timings):

- the run completes and every GPU rule was submitted with a GPU (gres/gpu in
  sacct's ReqTRES/AllocTRES) to the GPU partition, CPU rules without one;
- per-subject stages ran as batch rules (`<stage>_bNNN`, several subjects per
  process) bundled into group jobs, not one SLURM job per subject or batch;
- a second run submits nothing;
- a changed late-stage parameter (group.percentile) reruns exactly the rules that
  read it and what depends on them; a changed reconstruction parameter
  (reconstruct.cutoff_cycles_per_cm) reruns every reconstruct_spect batch and
  everything downstream of them. The expected sets come from the rule graph
  (`snakemake --rulegraph`), independent of Snakemake's rerun decision.

Skips only when not root or when DATXAI_SKIP_SLURM=1 (with the reason printed).
"""

import fcntl
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, os.path.dirname(__file__))
from workflow_rules import gpu_rules  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HARNESS = ROOT / "tests" / "slurm"
PROFILE = ROOT / "profiles" / "slurm" / "config.yaml"
OVERRIDE = HARNESS / "profile" / "config.yaml"
CONFIGS = [ROOT / "config" / "config.yaml", ROOT / "tests" / "configs" / "tiny.yaml", ROOT / "tests" / "configs" / "micro.yaml"]
# The rules that ask for a GPU (read from the .smk sources); the micro config runs these three of them.
GPU_RULES = gpu_rules()
GPU_RULES_RUN = {"train_cnn", "compute_relevance", "audit_relevance"}
PER_SUBJECT = {"simulate_subject", "reconstruct_spect", "normalize_to_mni", "scale_and_quantify"}
BATCH_RULE = re.compile(r"^(?P<stage>[a-z_]+)_b(?P<k>\d{3})$")
# Hard bounds (seconds) for each Snakemake call: snakemake under the SLURM
# executor ignores SIGTERM, hence `timeout -k`.
RUN_LIMIT = int(os.environ.get("DATXAI_SLURM_RUN_LIMIT", "900"))
DRY_LIMIT = 180
# One cluster per machine (fixed ports): concurrent test sessions take turns.
LOCK_WAIT = int(os.environ.get("DATXAI_SLURM_LOCK_WAIT", "1800"))

pytestmark = pytest.mark.slurm


def _skip_reason():
    if os.environ.get("DATXAI_SKIP_SLURM", "") not in ("", "0"):
        return "DATXAI_SKIP_SLURM is set"
    if os.geteuid() != 0:
        return "needs root to start munge/MariaDB/slurmdbd/slurmctld/slurmd (CI runs as root)"
    return None


def _merge(base: dict, over: dict) -> dict:
    """Key-by-key merge: nested mappings are merged, anything else replaced."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            out[key] = _merge(base[key], value)
        else:
            out[key] = value
    return out


class Cluster:
    def __init__(self, prefix: Path, work: Path):
        self.prefix = prefix
        self.work = work
        self.env = dict(
            os.environ,
            SLURM_LOCAL_DIR=str(prefix),
            SLURM_CONF=str(prefix / "etc" / "slurm.conf"),
            # srun inside a job step finds no config from SLURM_CONF alone: link
            # /etc/slurm/slurm.conf to ours (removed again by stop() if we made it)
            LINK_ETC="1",
            NODE_CPUS=os.environ.get("DATXAI_SLURM_NODE_CPUS", "6"),  # 2 real cores: let short jobs overlap
            PYTHONHASHSEED="0",
        )
        self.env["PATH"] = f"{Path(sys.executable).parent}:{self.env.get('PATH', '')}"
        self.profile = work / "profile"
        self.results = work / "results"
        self.log = work / "snakemake-logs"
        self.log.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------- daemons
    def start(self):
        self.etc_link = Path("/etc/slurm/slurm.conf")
        self.made_link = not self.etc_link.exists() and not self.etc_link.is_symlink()
        proc = subprocess.run(["timeout", "-k", "10", "300", "bash", str(HARNESS / "start_local_slurm.sh")], env=self.env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise AssertionError(f"start_local_slurm.sh failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        print(proc.stdout[-600:])

    def stop(self):
        proc = subprocess.run(["timeout", "-k", "10", "180", "bash", str(HARNESS / "stop_local_slurm.sh")], env=self.env, capture_output=True, text=True)
        print(f"stop_local_slurm.sh ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
        ours = self.etc_link.is_symlink() and os.readlink(self.etc_link) == self.env["SLURM_CONF"]
        if getattr(self, "made_link", False) and ours:
            self.etc_link.unlink()

    # ------------------------------------------------------------- snakemake
    def write_profile(self):
        merged = _merge(yaml.safe_load(PROFILE.read_text()), yaml.safe_load(OVERRIDE.read_text()))
        merged["slurm-logdir"] = str(self.work / "slurm_logs")
        self.profile.mkdir(parents=True, exist_ok=True)
        (self.profile / "config.yaml").write_text(yaml.safe_dump(merged, sort_keys=False))
        return merged

    def snakemake(self, *args, extra_configs=(), limit=DRY_LIMIT, name="snakemake", check=True):
        cmd = [
            "timeout", "-k", "30", str(limit), sys.executable, "-m", "snakemake", "--profile", str(self.profile),
            "--configfile", *map(str, CONFIGS), *map(str, extra_configs), "--config", f"results={self.results}", *args,
        ]
        proc = subprocess.run(cmd, cwd=ROOT, env=self.env, capture_output=True, text=True)
        (self.log / f"{name}.log").write_text(f"$ {' '.join(cmd)}\n# exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)}\nexit {proc.returncode} (124/137 = killed by timeout); full log {self.log / (name + '.log')}\n"
                f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
            )
        return proc

    def sacct(self):
        """Every job of this cluster: (job id, comment, partition, state, ReqTRES, AllocTRES)."""
        fields = "JobID,Comment%200,Partition,State,ReqTRES%200,AllocTRES%200"
        proc = subprocess.run(["timeout", "30", "sacct", "-a", "-X", "-n", "-P", "-S", "now-1days", f"--format={fields}"], env=self.env, capture_output=True, text=True, check=True)
        rows = [line.split("|") for line in proc.stdout.splitlines() if line.strip()]
        return [dict(zip(("jobid", "comment", "partition", "state", "req", "alloc"), r)) for r in rows]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = _skip_reason()
    if reason:
        print(f"\n[test_slurm] SKIPPED: {reason}", file=sys.stderr)
        pytest.skip(reason)
    for tool in ("timeout", "bash"):
        assert shutil.which(tool), f"{tool} not found"
    # short fixed prefix: unix socket paths (munge, MariaDB) must stay < 108 bytes
    prefix = Path(os.environ.get("DATXAI_SLURM_DIR", "/tmp/datxai-slurm-test"))
    with open(f"{prefix}.lock", "w") as lock:
        _take_turn(lock)
        c = Cluster(prefix, tmp_path_factory.mktemp("slurm"))
        try:
            c.start()
            c.write_profile()
            yield c
        finally:
            c.stop()


def _take_turn(lock):
    """Exclusive lock for the cluster's whole life: its daemons listen on fixed ports, and
    another session's finalizer would stop them under a running test."""
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise AssertionError(f"another test session has held {lock.name} for over {LOCK_WAIT} s (its SLURM cluster uses the same ports)")
            print(f"[test_slurm] waiting for {lock.name}: another session runs the SLURM test", file=sys.stderr)
            time.sleep(10)


@pytest.fixture(scope="module")
def first_run(cluster):
    before = {j["jobid"] for j in cluster.sacct()}
    t0 = time.monotonic()
    proc = cluster.snakemake(limit=RUN_LIMIT, name="01-run")
    print(f"[test_slurm] first run through SLURM: {time.monotonic() - t0:.0f} s")
    jobs = [j for j in cluster.sacct() if j["jobid"] not in before]
    return proc, jobs


def _rule_of(comment: str) -> str:
    """sbatch --comment of the plugin: rule_<rule>[_wildcards_...]; group jobs rule_<group>_<rules...>."""
    m = re.match(r"rule_(.+?)(?:_wildcards_.*)?$", comment)
    assert m, f"unexpected SLURM job comment {comment!r}"
    return m.group(1)


def _job_stats(stdout: str) -> dict:
    """Snakemake's dry-run 'Job stats' table -> {rule: count}."""
    m = re.search(r"Job stats:\n.*?\n-+\s+-+\n(.*?)\ntotal\s+\d+", stdout, re.S)
    assert m, f"no Job stats table in:\n{stdout[-3000:]}"
    return {rule: int(n) for rule, n in (line.split() for line in m.group(1).splitlines() if line.strip())}


def _rulegraph(cluster) -> dict:
    """Rule graph (DOT from `snakemake --rulegraph`) as {rule: set of rules consuming its output}."""
    dot = cluster.snakemake("--rulegraph", name="rulegraph").stdout
    names = {n: label for n, label in re.findall(r"^\s*(\d+)\[label = \"([^\"]+)\"", dot, re.M)}
    children = {label: set() for label in names.values()}
    for a, b in re.findall(r"^\s*(\d+) -> (\d+)", dot, re.M):
        children[names[a]].add(names[b])
    assert len(children) > 20, dot[:2000]
    return children


def _downstream(graph: dict, seeds: set) -> set:
    out, todo = set(seeds), list(seeds)
    while todo:
        for child in graph[todo.pop()]:
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def _summary(cluster, extra_configs, name) -> dict:
    """`snakemake --summary` -> {rule: set of (status, plan)} over its output files."""
    out = cluster.snakemake("--summary", extra_configs=extra_configs, name=name).stdout
    lines = [line.split("\t") for line in out.splitlines() if "\t" in line]
    header, rows = lines[0], lines[1:]
    assert header[:3] == ["output_file", "date", "rule"] and "status" in header and "plan" in header, header
    i_rule, i_status, i_plan = header.index("rule"), header.index("status"), header.index("plan")
    by_rule = {}
    for r in rows:
        by_rule.setdefault(r[i_rule], set()).add((r[i_status], r[i_plan]))
    return by_rule


def _changed_config(cluster, name, mapping) -> Path:
    path = cluster.work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(mapping))
    return path


# ---------------------------------------------------------------------- tests
def test_run_completes(cluster, first_run):
    proc, jobs = first_run
    r = cluster.results
    for rel in ("evaluate/table1.tsv", "stats/roc.tsv", "provenance.json", "provenance_check.tsv", "group/full/heat.nii.gz"):
        assert (r / rel).is_file(), f"{rel} missing after the SLURM run"
    assert jobs, "sacct shows no job of this run"
    failed = [j for j in jobs if j["state"] != "COMPLETED"]
    assert not failed, failed


def test_gpu_rules_request_a_gpu(first_run):
    _, jobs = first_run
    by_rule = {}
    for j in jobs:
        by_rule.setdefault(_rule_of(j["comment"]), []).append(j)
    assert GPU_RULES_RUN <= GPU_RULES
    assert set(by_rule) & GPU_RULES == GPU_RULES_RUN, sorted(by_rule)
    for rule in GPU_RULES_RUN:
        assert len(by_rule.get(rule, [])) == 3, f"{rule}: expected one SLURM job per setting, sacct: {by_rule.get(rule)}"
        for j in by_rule[rule]:
            assert "gres/gpu=1" in j["req"].split(",") and "gres/gpu=1" in j["alloc"].split(","), j
            assert j["partition"] == "gpu", j
    cpu_jobs = [j for rule, js in by_rule.items() if rule not in GPU_RULES for j in js]
    assert cpu_jobs
    for j in cpu_jobs:  # the control: CPU rules ask for no GPU and go to the CPU partition
        assert "gres/gpu" not in j["req"] and j["partition"] == "cpu", j


def _stage(rule: str) -> str:
    """The stage of a batch rule (reconstruct_spect_b003 -> reconstruct_spect); other rules unchanged."""
    m = BATCH_RULE.match(rule)
    return m["stage"] if m and m["stage"] in PER_SUBJECT else rule


def test_per_subject_rules_run_grouped(cluster, first_run):
    """16 subjects in about 4 per batch (micro config) = up to 4 batch rules per stage; group-components 2: half as many
    jobs per group."""
    _, jobs = first_run
    comps = yaml.safe_load((cluster.profile / "config.yaml").read_text())["group-components"]
    from datxai.batches import subject_batches

    per_job = yaml.safe_load(CONFIGS[-1].read_text())["execution"]["subjects_per_job"]
    n_batches = len(subject_batches([f"sub-{i:04d}" for i in range(1, 17)], per_job))  # non-empty batches
    rules = [_rule_of(j["comment"]) for j in jobs]
    alone = {r for r in rules if _stage(r) in PER_SUBJECT}
    assert not alone, f"batch rules were submitted as SLURM jobs of their own: {sorted(alone)}"
    assert not PER_SUBJECT & set(rules), "per-subject rules were submitted one job per subject"
    for group, n in comps.items():
        count = sum(r == group or r.startswith(f"{group}_") for r in rules)
        assert count == -(-n_batches // n), (group, rules)


def test_second_run_does_nothing(cluster, first_run):
    before = len(cluster.sacct())
    cluster.snakemake(limit=300, name="02-rerun")
    log = (cluster.log / "02-rerun.log").read_text()
    assert "Nothing to be done" in log, log[-2000:]
    assert len(cluster.sacct()) == before, "a second run submitted SLURM jobs"


@pytest.mark.parametrize(
    "name, change, seeds",
    [
        # late stage: the cluster threshold is read by find_clusters and by the figure of the clusters;
        # provenance.json records the whole config, so write_provenance reruns after any change
        ("percentile", {"group": {"percentile": 90}}, {"find_clusters", "plot_relevance_figures", "write_provenance"}),
        # early stage: the FBP cut-off is read by the reconstruction and by build_template, whose MNI anchor
        # (normalize.template_space: anchor) is the atlas seed projected and reconstructed the cohort's way;
        # provenance.json records it too
        (
            "cutoff",
            {"reconstruct": {"cutoff_cycles_per_cm": 1.0}},
            {"reconstruct_spect", "build_template", "write_provenance"},
        ),
    ],
)
def test_changed_parameter_reruns_exactly_its_downstream(cluster, first_run, name, change, seeds):
    changed = _changed_config(cluster, name, change)
    graph = _rulegraph(cluster)
    seeds = {r for r in graph if _stage(r) in seeds}  # a per-subject stage: every one of its batch rules
    expected = _downstream(graph, seeds)

    dry = cluster.snakemake("-n", extra_configs=[changed], name=f"03-dry-{name}").stdout
    planned = set(_job_stats(dry))
    print(f"[test_slurm] {name} change reruns {len(planned)} rules: {sorted(planned)}")
    assert planned == expected, f"unexpected: {sorted(planned - expected)}; missing: {sorted(expected - planned)}"

    # --summary: the params changed exactly for the seed rules' outputs, the rest of the set is pending
    summary = _summary(cluster, [changed], f"04-summary-{name}")
    params_changed = {rule for rule, st in summary.items() if any("params" in s.lower() for s, _ in st)}
    pending = {rule for rule, st in summary.items() if any(p != "no update" for _, p in st)}
    assert params_changed == seeds, summary
    assert pending == expected - {"all"}, f"unexpected: {sorted(pending - expected)}; missing: {sorted(expected - pending)}"
    # (`--list-changes params` is not asserted: in Snakemake 9.27.1 it prints one
    # output of every job whether or not its params changed; see the README.)
