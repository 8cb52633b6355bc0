"""Group relevance analysis: heat maps (TP - TN), extrastriatal clusters, S2 checks, figures.

:mod:`.heat` mean maps and heat; :mod:`.clusters` threshold, clusters, atlas labels,
validation against the synthetic truth; :mod:`.companion` S2's putamen relevance;
:mod:`.figures` Figs 1-3.
"""
