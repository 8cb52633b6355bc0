"""Cluster-uptake statistics: the extrastriatal relevance clusters as ROIs.

* :mod:`.uptake` — mean scaled uptake per subject and cluster; the focus cluster
* :mod:`.ttests` — reduced vs normal t-tests (Welch or Student), Cohen's d, Holm
* :mod:`.roc` — AUC with DeLong CI (fast DeLong, Sun & Xu 2014), Mann-Whitney P
* :mod:`.correlation` — Pearson R with putamen SBR, Fisher-z CI
* :mod:`.comparator` — putamen SBR as a classifier (Youden cut-off, Wilson CIs)
* :mod:`.figures` — Figs. 4 and 5
* :mod:`.analysis` — all of the above for one cluster setting

Convention: images are mirrored, so side I (ipsilateral) is the side of the lower
putamen SBR, C the other; effects are reduced minus normal.
"""

from .comparator import binary_metrics, sbr_comparator, wilson_ci, youden_cutoff
from .correlation import cluster_sbr_correlations, pearson_fisher
from .roc import cluster_roc, delong_auc, roc_auc, roc_curve
from .ttests import cluster_ttests, holm, two_sample_ttest
from .uptake import choose_focus, cluster_means, compute_uptake, load_clusters, merge_uptake

__all__ = [
    "binary_metrics", "sbr_comparator", "wilson_ci", "youden_cutoff",
    "cluster_sbr_correlations", "pearson_fisher",
    "cluster_roc", "delong_auc", "roc_auc", "roc_curve",
    "cluster_ttests", "holm", "two_sample_ttest",
    "choose_focus", "cluster_means", "compute_uptake", "load_clusters", "merge_uptake",
]
