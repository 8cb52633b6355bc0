"""Provenance of a run: config, versions, git state, input checksums, seeds, devices.

``build_provenance`` gathers a JSON-serialisable record; ``verify_checksums``
recomputes the input checksums later and lists what changed, so a reader can
check that the inputs of a published run are the ones on disk. No file contents
other than hashes are recorded (nothing from DICOM headers).
"""

from __future__ import annotations

import hashlib
import logging
import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import pandas as pd

from .io import InputError

log = logging.getLogger(__name__)

PACKAGES = ("datxai", "numpy", "scipy", "torch", "nibabel", "nilearn", "nipype", "pydicom", "snakemake",
            "zennit", "statsmodels", "pandas")


def file_sha256(path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(chunk), b""):
                h.update(block)
    except FileNotFoundError as exc:
        raise InputError(f"{path}: file not found (checksum)") from exc
    return h.hexdigest()


def checksums(paths) -> dict[str, str]:
    """{path as given: sha256} for every file, in sorted order; logs progress for long lists."""
    paths = sorted(map(str, paths))
    out = {}
    step = max(1, len(paths) // 10)
    for i, p in enumerate(paths):
        out[p] = file_sha256(p)
        if (i + 1) % step == 0:
            log.info("checksums: %d / %d files", i + 1, len(paths))
    return out


def package_versions(names=PACKAGES) -> dict[str, str]:
    """Installed distribution versions ('not installed' when absent), plus python."""
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_state(root) -> dict:
    """{'commit': sha or None, 'dirty': bool or None, 'repository': bool} of the repository at ``root``.

    Dirty means tracked files differ from the commit (untracked files are ignored).
    """
    def git(*args):
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)

    try:
        head = git("rev-parse", "HEAD")
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return {"repository": False, "commit": None, "dirty": None}
    if head.returncode != 0:
        return {"repository": False, "commit": None, "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"repository": True, "commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}


NUMERICS_KEYS = ("cpu_model", "cpu_flags", "aten_capability", "threads", "numerics_switches", "torch", "cuda", "cudnn")


def read_devices(hyperparameter_files: dict) -> dict:
    """Per setting, from its training's hyperparameters.json: device, seed and the numerics that decided its bits.

    ``{setting: {"device", "seed", "numerics", "source"}}`` (None where the file is absent);
    ``numerics`` holds the CPU model and SIMD flags, ATen's kernel set, the thread
    count, the instruction-set switches (:mod:`datxai.numerics`) and the torch/CUDA versions.
    """
    import json

    out = {}
    for setting, path in sorted(hyperparameter_files.items()):
        try:
            with open(path) as fh:
                hp = json.load(fh)
        except FileNotFoundError:
            out[setting] = {"device": None, "seed": None, "numerics": None, "source": None}
            continue
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not valid JSON ({exc})") from exc
        versions = hp.get("versions", {})
        out[setting] = {"device": hp.get("device_used", hp.get("device")),
                        "seed": hp.get("training", {}).get("seed", hp.get("seed")),
                        "numerics": {k: versions.get(k) for k in NUMERICS_KEYS}, "source": str(path)}
    return out


def lock_state(root) -> dict:
    """``{"file", "sha256"}`` of the requirements.lock the environment was installed from (None where absent)."""
    path = Path(root) / "requirements.lock"
    return {"file": str(path), "sha256": file_sha256(path) if path.is_file() else None}


def build_provenance(config: dict, input_files, hyperparameter_files: dict | None = None, root=".",
                     extra: dict | None = None) -> dict:
    """The provenance record of a run.

    Parameters
    ----------
    config : the resolved (validated, defaults filled) config.
    input_files : paths of every input file (participants.tsv, images) to checksum.
    hyperparameter_files : {setting: path to train/{setting}/hyperparameters.json}.
    root : the workflow's source folder (for the git commit).
    """
    input_files = [str(p) for p in input_files]
    from .numerics import cpu_description

    train = read_devices(hyperparameter_files or {})
    cpu = cpu_description()
    return {
        "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "config": config,
        "versions": package_versions(),
        "git": git_state(root),
        "platform": {"system": platform.system(), "machine": platform.machine(), "cpu_model": cpu[0],
                     "cpu_flags": cpu[1]},
        "lock": lock_state(root),
        "seeds": {"master": config.get("seed"), **{f"train_{s}": v["seed"] for s, v in train.items()}},
        "devices": {s: v["device"] for s, v in train.items()},
        "numerics": {s: v["numerics"] for s, v in train.items()},
        "inputs": {"algorithm": "sha256", "n_files": len(input_files), "files": checksums(input_files)},
        **(extra or {}),
    }


def verify_checksums(provenance) -> list[str]:
    """Recompute the input checksums of a provenance record (dict or JSON path).

    Returns a list of problems ('changed: path', 'missing: path'); empty = unchanged.
    """
    import json

    if not isinstance(provenance, dict):
        with open(provenance) as fh:
            provenance = json.load(fh)
    try:
        files = provenance["inputs"]["files"]
    except KeyError as exc:
        raise InputError("provenance record has no inputs.files") from exc
    problems = []
    for path, digest in sorted(files.items()):
        if not Path(path).is_file():
            problems.append(f"missing: {path}")
        elif file_sha256(path) != digest:
            problems.append(f"changed: {path}")
    if problems:
        log.warning("%d of %d inputs changed or missing since provenance was recorded", len(problems), len(files))
    return problems


def provenance_table(prov: dict, max_files: int = 20) -> pd.DataFrame:
    """A flat (section, key, value) table of a provenance record, for the report.

    The config is flattened to dotted keys; only the first ``max_files`` checksums are listed.
    """
    rows = [("run", "created_utc", prov.get("created_utc"))]
    rows += [("git", k, v) for k, v in prov.get("git", {}).items()]
    rows += [("versions", k, v) for k, v in prov.get("versions", {}).items()]
    rows += [("platform", k, v) for k, v in prov.get("platform", {}).items()]
    rows += [("seeds", k, v) for k, v in prov.get("seeds", {}).items()]
    rows += [("devices", k, v) for k, v in prov.get("devices", {}).items()]
    rows += [("lock", k, v) for k, v in prov.get("lock", {}).items()]

    def flat(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict):
                yield from flat(v, f"{prefix}{k}.")
            else:
                yield (f"{prefix}{k}", v)

    rows += [("numerics", k, v) for k, v in flat({s: n for s, n in prov.get("numerics", {}).items() if n})]

    rows += [("config", k, v) for k, v in flat(prov.get("config", {}))]
    files = prov.get("inputs", {}).get("files", {})
    rows.append(("inputs", "n_files", len(files)))
    for i, (p, h) in enumerate(sorted(files.items())):
        if i >= max_files:
            rows.append(("inputs", "...", f"{len(files) - max_files} more in provenance.json"))
            break
        rows.append(("inputs", p, f"sha256:{h}"))
    return pd.DataFrame(rows, columns=["section", "key", "value"]).astype({"value": str})

