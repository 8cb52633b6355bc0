"""The fast producer lookup gives Snakemake's own answers (fake rules here; the real DAG in test_dag.py)."""

import re

import pytest

from datxai import snakemake_speedups

WILDCARD = re.compile(r"\{([^{}]+)\}")


class FakeFile(str):
    def get_wildcard_names(self):
        return set(WILDCARD.findall(self))


class FakeRule:
    """What Snakemake 9's Rule offers the fast path: products(), wildcard_names, is_producer, get_wildcards."""

    def __init__(self, *products):
        self._products = [FakeFile(p) for p in products]
        self.wildcard_names = set().union(*(p.get_wildcard_names() for p in self._products))
        self.plain_calls = 0

    def products(self):
        return iter(self._products)

    def _regex(self, p):
        return re.compile(WILDCARD.sub(r"(?P<\1>.+)", re.escape(p).replace(r"\{", "{").replace(r"\}", "}")) + "$")

    def is_producer(self, f):
        self.plain_calls += 1
        return any(self._regex(p).match(f) for p in self._products)

    def get_wildcards(self, f, wildcards_dict=None):
        self.plain_calls += 1
        for p in self._products:
            m = self._regex(p).match(f)
            if m:
                return m.groupdict()
        return None


@pytest.fixture
def rule_class(monkeypatch):
    monkeypatch.delenv(snakemake_speedups.ENV_OFF, raising=False)

    class Rule(FakeRule):
        pass

    assert snakemake_speedups.install(Rule)
    assert snakemake_speedups.install(Rule)  # a second install is a no-op
    return Rule


def test_concrete_rules_are_answered_by_lookup(rule_class):
    batch = rule_class("r/recon/sub-0001.nii.gz", "r/recon/sub-0002.nii.gz", "r/logs/b000.log")
    assert batch.is_producer("r/recon/sub-0002.nii.gz")
    assert not batch.is_producer("r/recon/sub-0003.nii.gz")
    assert not batch.is_producer("r/recon/sub-0002.nii")  # exact paths only, as Snakemake's anchored regex
    assert batch.get_wildcards("r/recon/sub-0001.nii.gz") == {}
    assert batch.plain_calls == 0
    # a path the rule does not produce goes to Snakemake's method (which answers None)
    assert batch.get_wildcards("r/other.txt") is None and batch.plain_calls == 1


def test_rules_with_wildcards_keep_snakemake_matching(rule_class):
    rule = rule_class("r/train/{setting}/model.pt", "r/logs/train_{setting}.log")
    assert rule.is_producer("r/train/full/model.pt") and rule.plain_calls == 1
    assert rule.get_wildcards("r/train/full/model.pt") == {"setting": "full"}
    mixed = rule_class("r/fixed.txt", "r/{x}.tsv")
    assert mixed.is_producer("r/fixed.txt") and mixed.plain_calls == 0  # a concrete product: lookup
    assert mixed.is_producer("r/a.tsv") and mixed.plain_calls == 1  # the pattern: Snakemake


def test_switched_off_by_the_environment(monkeypatch):
    class Rule(FakeRule):
        pass

    monkeypatch.setenv(snakemake_speedups.ENV_OFF, "1")
    assert not snakemake_speedups.install(Rule)
    assert Rule.is_producer is FakeRule.is_producer


def test_installed_on_snakemake_9(monkeypatch):
    import snakemake
    from snakemake.rules import Rule

    if not snakemake.__version__.startswith("9."):
        pytest.skip("the fast path is written for Snakemake 9")
    monkeypatch.delenv(snakemake_speedups.ENV_OFF, raising=False)
    assert snakemake_speedups.install() is True
    assert getattr(Rule, "_datxai_fast_products", False)
