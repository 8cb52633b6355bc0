"""The shipped SLURM profile routes every rule that asks for a GPU to the GPU partition with one GPU.

A rule with `resources: gpu=1` but no `set-resources` entry would be submitted to the CPU partition with a
GPU request: refused, or left pending, on a cluster whose CPU nodes have no GPUs. Static: reads the .smk
sources and profiles/slurm/config.yaml (the SLURM test checks the same on a real scheduler for the rules
the micro config runs).
"""

import os
import sys
from pathlib import Path

import yaml

sys.path.insert(0, os.path.dirname(__file__))
from workflow_rules import gpu_rules, rule_blocks  # noqa: E402

PROFILE = Path(__file__).resolve().parents[1] / "profiles" / "slurm" / "config.yaml"


def test_the_rule_reader_sees_the_workflow():
    blocks = rule_blocks()
    # a known plain rule, a known alias and its base: the parser is not silently empty
    assert {"train_cnn", "compute_relevance", "train_cnn_repeat", "find_clusters"} <= set(blocks)
    assert blocks["train_cnn_repeat"][0] == "train_cnn"
    assert blocks["find_clusters"][0] is None


def test_gpu_rules_are_the_training_and_relevance_rules():
    assert gpu_rules() == {
        "train_cnn",
        "train_cnn_repeat",
        "compute_relevance",
        "compute_relevance_repeat",
        "audit_relevance",
    }


def test_every_gpu_rule_goes_to_the_gpu_partition_with_one_gpu():
    resources = yaml.safe_load(PROFILE.read_text())["set-resources"]
    for rule in sorted(gpu_rules()):
        assert rule in resources, f"{PROFILE}: set-resources has no entry for GPU rule {rule}"
        assert resources[rule].get("slurm_partition") == "gpu", (rule, resources[rule])
        assert resources[rule].get("gpu") == 1, (rule, resources[rule])


def test_only_gpu_rules_are_sent_to_the_gpu_partition():
    resources = yaml.safe_load(PROFILE.read_text())["set-resources"]
    on_gpu = {rule for rule, r in resources.items() if (r or {}).get("slurm_partition") == "gpu"}
    assert on_gpu == gpu_rules()
