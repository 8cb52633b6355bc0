"""The workflow's rules read from its .smk sources (no Snakemake import): which rules ask for a GPU.

A rule asks for one when its `resources:` hold `gpu=...` (> 0); a `use rule A as B with:` inherits A's
unless its own block sets `gpu=`. Shared by the profile test (every GPU rule is routed to the GPU
partition) and the SLURM test (which of the jobs that ran must carry a GPU).
"""

import re
from pathlib import Path

RULES_DIR = Path(__file__).resolve().parents[1] / "workflow" / "rules"
_HEAD = re.compile(r"^(?:rule (?P<name>\w+):|use rule (?P<base>\w+) as (?P<alias>\w+)(?P<with> with:)?)", re.M)
_GPU = re.compile(r"^\s+gpu\s*=\s*(?P<n>\d+)\s*,?\s*$", re.M)


def rule_blocks() -> dict:
    """{rule name: (base rule or None, text of its block)} over workflow/rules/*.smk."""
    blocks = {}
    for path in sorted(RULES_DIR.glob("*.smk")):
        text = path.read_text()
        heads = list(_HEAD.finditer(text))
        for i, m in enumerate(heads):
            end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
            body = text[m.end() : end]
            if m["name"]:
                blocks[m["name"]] = (None, body)
            else:
                blocks[m["alias"]] = (m["base"], body if m["with"] else "")
    return blocks


def gpu_rules() -> set:
    """Names of the rules that request a GPU (directly or inherited through `use rule`)."""
    blocks = rule_blocks()

    def gpus(name):
        base, body = blocks[name]
        own = _GPU.search(body)
        if own:
            return int(own["n"])
        return gpus(base) if base else 0

    return {name for name in blocks if gpus(name) > 0}
