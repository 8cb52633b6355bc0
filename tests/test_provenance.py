"""Provenance: checksums against hashlib, verification detects changed and missing inputs, devices, table."""

import hashlib
import json

import pytest

from datxai.provenance import (build_provenance, file_sha256, git_state, package_versions, provenance_table,
                               read_devices, verify_checksums)


@pytest.fixture
def inputs(tmp_path):
    files = []
    for i, content in enumerate([b"subject\tlabel\nsub-0001\tnormal\n", b"\x00\x01DICM" * 1000, b""]):
        p = tmp_path / f"in{i}.bin"
        p.write_bytes(content)
        files.append(p)
    return files


def test_sha256_matches_hashlib(inputs):
    for p in inputs:
        assert file_sha256(p, chunk=7) == hashlib.sha256(p.read_bytes()).hexdigest()  # chunking is invisible


def test_verify_detects_changes(tmp_path, inputs):
    hp = tmp_path / "hp.json"
    # the keys datxai.model.train.write_training_outputs writes
    hp.write_text(json.dumps({"device_used": "cuda:0 (NVIDIA H100)", "training": {"seed": 123, "learning_rate": 1e-4},
                              "versions": {"torch": "2.13.0", "cpu_model": "AMD EPYC", "threads": 2,
                                           "numerics_switches": {"ONEDNN_MAX_CPU_ISA": "AVX2"}}}))
    (tmp_path / "requirements.lock").write_text("numpy==2.4.6 --hash=sha256:00\n")
    prov = build_provenance({"seed": 7, "stats": {"ttest": "welch"}}, inputs,
                            {"full": hp, "striatum": tmp_path / "absent.json"}, root=tmp_path)
    json.dumps(prov)  # serialisable
    assert prov["devices"] == {"full": "cuda:0 (NVIDIA H100)", "striatum": None}
    assert prov["seeds"]["master"] == 7 and prov["seeds"]["train_full"] == 123
    assert prov["numerics"]["full"]["threads"] == 2 and prov["numerics"]["striatum"] is None
    assert prov["numerics"]["full"]["numerics_switches"] == {"ONEDNN_MAX_CPU_ISA": "AVX2"}
    assert prov["lock"]["sha256"] == hashlib.sha256(b"numpy==2.4.6 --hash=sha256:00\n").hexdigest()
    assert prov["platform"]["cpu_model"]
    assert prov["inputs"]["n_files"] == 3
    assert verify_checksums(prov) == []
    path = tmp_path / "provenance.json"
    path.write_text(json.dumps(prov))
    inputs[1].write_bytes(inputs[1].read_bytes()[:-1] + b"X")  # one byte changed
    inputs[2].unlink()
    assert verify_checksums(path) == [f"changed: {inputs[1]}", f"missing: {inputs[2]}"]


def test_versions_and_git(tmp_path, repo_root):
    v = package_versions()
    for name in ("python", "datxai", "numpy", "scipy", "torch", "snakemake", "statsmodels", "pandas"):
        assert v[name] and v[name] != "not installed"
    assert package_versions(["no-such-package-xyz"])["no-such-package-xyz"] == "not installed"
    assert git_state(tmp_path) == {"repository": False, "commit": None, "dirty": None}
    g = git_state(repo_root)
    if g["repository"]:
        assert len(g["commit"]) == 40 and isinstance(g["dirty"], bool)


def test_bad_hyperparameters(tmp_path):
    bad = tmp_path / "hp.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="hp.json: not valid JSON"):
        read_devices({"full": bad})


def test_table(tmp_path, inputs):
    prov = build_provenance({"seed": 7, "grid": {"voxel_mm": 6.0}}, inputs, root=tmp_path)
    t = provenance_table(prov, max_files=2)
    assert {"git", "versions", "config", "inputs"} <= set(t["section"])
    assert "grid.voxel_mm" in set(t["key"])
    assert (t["key"] == "...").sum() == 1  # 3 files, 2 listed


def test_cli_verify_exit_codes(tmp_path, inputs):
    from datxai.cli import main

    path = tmp_path / "provenance.json"
    path.write_text(json.dumps(build_provenance({"seed": 1}, inputs, root=tmp_path)))
    assert main(["stats", "verify-provenance", str(path)]) == 0
    inputs[0].write_text("subject\tlabel\nsub-0001\treduced\n")
    assert main(["stats", "verify-provenance", str(path)]) == 1
