"""Spill-over check: cluster uptake, reduced vs normal, adjusted for the ipsilateral putamen SBR (ANCOVA).

A cluster near the striatum has lower uptake in reduced scans even when nothing
outside the striatum changed: the striatal loss spreads into it through the
camera's limited resolution (partial volume). The t-test of :mod:`.ttests`
cannot tell that from an extrastriatal effect. The analysis of covariance

    uptake = b0 + b_reduced * [reduced] + b_sbr * SBR_putamen_ipsi + e

asks whether the group difference survives at equal putamen SBR: ``b_reduced``
(the adjusted difference, reduced minus normal) with its t, P and 95 % CI from
ordinary least squares (statsmodels ``OLS``), beside the unadjusted difference
of the means. A difference that vanishes after adjustment is explained by the
striatal signal; one that stays is not (it may still be correlated with it).
Caveat: the SBR separates the groups almost perfectly in a DaT scan, so the
two regressors are collinear and the adjusted difference has a wide CI; read
the CI, not only P.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from .ttests import holm_table

log = logging.getLogger(__name__)

COLUMNS = ["cluster", "cluster_label", "side", "subset", "covariate", "n_reduced", "n_normal", "diff_unadjusted",
           "diff_adjusted", "diff_adjusted_ci_low", "diff_adjusted_ci_high", "t_adjusted", "df", "p_adjusted",
           "p_adjusted_holm", "slope_covariate", "t_covariate", "test"]


def ancova(uptake, reduced, covariate) -> dict:
    """OLS of ``uptake`` on a reduced-group indicator and ``covariate``; NaN results when it cannot be fitted.

    Returns n_reduced, n_normal, diff_unadjusted, diff_adjusted (+ 95 % CI), t_adjusted, df, p_adjusted,
    slope_covariate, t_covariate.
    """
    import statsmodels.api as sm

    y = np.asarray(uptake, float)
    g = np.asarray(reduced, bool)
    c = np.asarray(covariate, float)
    ok = np.isfinite(y) & np.isfinite(c)
    y, g, c = y[ok], g[ok], c[ok]
    out = {"n_reduced": int(g.sum()), "n_normal": int((~g).sum()),
           "diff_unadjusted": float(y[g].mean() - y[~g].mean()) if g.any() and (~g).any() else np.nan}
    nan = dict(diff_adjusted=np.nan, diff_adjusted_ci_low=np.nan, diff_adjusted_ci_high=np.nan, t_adjusted=np.nan,
               df=np.nan, p_adjusted=np.nan, slope_covariate=np.nan, t_covariate=np.nan)
    x = np.column_stack([np.ones(len(y)), g.astype(float), c])
    if out["n_reduced"] < 2 or out["n_normal"] < 2 or len(y) < 4 or np.linalg.matrix_rank(x) < 3:
        return {**out, **nan}
    fit = sm.OLS(y, x).fit()
    lo, hi = fit.conf_int(0.05)[1]
    return {**out, "diff_adjusted": float(fit.params[1]), "diff_adjusted_ci_low": float(lo),
            "diff_adjusted_ci_high": float(hi), "t_adjusted": float(fit.tvalues[1]), "df": float(fit.df_resid),
            "p_adjusted": float(fit.pvalues[1]), "slope_covariate": float(fit.params[2]),
            "t_covariate": float(fit.tvalues[2])}


def cluster_ancova(table: pd.DataFrame, covariate: str, subsets=("train", "test")) -> pd.DataFrame:
    """ANCOVA per cluster and subset; Holm adjustment over the clusters within a subset.

    ``table`` is the merged long table (subject, cluster, cluster_label, side, uptake, label, subset and
    ``covariate``; :func:`datxai.stats.uptake.merge_uptake`). Returns the columns of :data:`COLUMNS`.
    """
    if covariate not in table.columns:
        raise ValueError(f"ancova: column {covariate!r} missing; have {list(table.columns)}")
    rows = []
    for subset in subsets:
        sub = table[table["subset"] == subset]
        for (cluster, lab, side), grp in sub.groupby(["cluster", "cluster_label", "side"], sort=True):
            r = ancova(grp["uptake"], grp["label"] == "reduced", grp[covariate])
            if np.isnan(r["p_adjusted"]):
                log.warning("cluster %s (%s): ANCOVA undefined in %s (n reduced %d, n normal %d)",
                            cluster, lab, subset, r["n_reduced"], r["n_normal"])
            rows.append({"cluster": cluster, "cluster_label": lab, "side": side, "subset": subset,
                         "covariate": covariate, **r, "test": f"OLS uptake ~ reduced + {covariate}"})
    return holm_table(rows, COLUMNS, "p_adjusted", "p_adjusted_holm", subsets)
