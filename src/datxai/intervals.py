"""Confidence intervals shared by the evaluation (Table 1) and the statistics (SBR comparator).

A bottom-layer module (no torch), so that every stage reports proportions with the same interval.
"""

from __future__ import annotations

from .checks import check_range


def wilson_ci(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes out of ``n`` (no continuity correction; statsmodels'
    ``proportion_confint(method="wilson")``). NaN for n = 0; exactly 0 at k = 0 and 1 at k = n."""
    from statsmodels.stats.proportion import proportion_confint

    check_range("wilson_ci: n", n, 0)
    check_range("wilson_ci: k", k, 0, n)
    if n == 0:
        return float("nan"), float("nan")
    low, high = proportion_confint(int(k), int(n), alpha=1.0 - confidence, method="wilson")
    # the bounds are exactly 0 at k = 0 and 1 at k = n; the formula reaches them only up to rounding
    return (0.0 if k == 0 else max(0.0, float(low))), (1.0 if k == n else min(1.0, float(high)))
