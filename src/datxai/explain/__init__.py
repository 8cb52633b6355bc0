"""LRP relevance maps of the DAT-SPECT CNN (zennit composite by layer name, or the same rules as tensor ops).

See :mod:`datxai.explain.lrp` for the rules and :mod:`datxai.explain.torchvision_compat`
for importing zennit where torchvision is broken.
"""

from .lrp import (  # noqa: F401
    PAPER_RULES,
    CaseRelevance,
    LRPConfig,
    build_composite,
    explain_array,
    relevance_batch,
    resolve_layer_rules,
)
