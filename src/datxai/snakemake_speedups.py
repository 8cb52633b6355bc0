"""A fast path for Snakemake's producer lookup of concrete (wildcard-free) output files.

Why: the batch rules (`<stage>_bNNN`) list their subjects' files explicitly, so the
paper's DAG (1306 subjects) has ~12 000 concrete products and ~20 000 input files to
match to them. Snakemake 9's `Rule.is_producer` and `Rule.get_wildcards` try every
product of a candidate rule in turn, compiling one regular expression per product
(`re.escape(path) + "$"`), although for a concrete product that regex matches exactly
one string: the path itself. `install()` adds a set lookup in front of both methods:

* `is_producer(f)`: True when `f` is one of the rule's concrete products; False when the
  rule has only concrete products and `f` is none of them; otherwise Snakemake's own
  method (rules with wildcards are untouched).
* `get_wildcards(f)`: `{}` for a rule without wildcards when `f` is one of its products
  (what Snakemake returns: the empty match of a concrete regex); otherwise Snakemake's.

The answers are the ones Snakemake's methods give (tests/test_dag.py compares the paper's
dry run with and without the fast path job by job); only the time changes. It is applied
by the workflow (common.smk) for Snakemake 9 only, and switched off with the environment
variable DATXAI_PLAIN_SNAKEMAKE=1.
"""

from __future__ import annotations

import os

_CACHE = "_datxai_concrete_products"
ENV_OFF = "DATXAI_PLAIN_SNAKEMAKE"


def concrete_products(rule) -> tuple[frozenset, bool]:
    """(paths of the rule's wildcard-free local products, whether every product is one).

    Storage-backed products are left to Snakemake's own matching.
    Cached on the rule: outputs, logs and benchmark are fixed once the Snakefile is parsed.
    """
    cached = rule.__dict__.get(_CACHE)
    if cached is None:
        products = list(rule.products())
        concrete = frozenset(
            str(p) for p in products if not p.get_wildcard_names() and not getattr(p, "is_storage", False)
        )
        cached = (concrete, len(concrete) == len(products))
        rule.__dict__[_CACHE] = cached
    return cached


def install(rule_class=None) -> bool:
    """Patch `rule_class` (default: snakemake.rules.Rule) once; returns whether the fast path is active."""
    if os.environ.get(ENV_OFF, "") not in ("", "0"):
        return False
    if rule_class is None:
        import snakemake
        from snakemake.rules import Rule as rule_class

        if not str(getattr(snakemake, "__version__", "")).startswith("9."):
            return False  # written against Snakemake 9's Rule; elsewhere Snakemake's own methods run
    if getattr(rule_class, "_datxai_fast_products", False):
        return True
    if not all(hasattr(rule_class, name) for name in ("is_producer", "get_wildcards", "products")):
        return False
    plain_is_producer = rule_class.is_producer
    plain_get_wildcards = rule_class.get_wildcards

    def is_producer(self, requested_output):
        concrete, only_concrete = concrete_products(self)
        if requested_output in concrete:
            return True
        if only_concrete:
            return False
        return plain_is_producer(self, requested_output)

    def get_wildcards(self, requested_output, wildcards_dict=None):
        if requested_output is not None and not self.wildcard_names:
            if requested_output in concrete_products(self)[0]:
                return {}
        return plain_get_wildcards(self, requested_output, wildcards_dict)

    is_producer.__doc__ = plain_is_producer.__doc__
    get_wildcards.__doc__ = plain_get_wildcards.__doc__
    rule_class.is_producer = is_producer
    rule_class.get_wildcards = get_wildcards
    rule_class._datxai_fast_products = True
    return True
