"""Stratified train / validation / test split with age balancing (S2's method).

Method
------
1. Strata are sex x class (``F``/``M`` x visual read ``normal``/``reduced``).
2. Subset sizes ``split.sizes`` are fractions (all <= 1, summing to 1) or
   counts (integers; their sum may be less than the cohort, the rest is left
   out of the split and logged). Totals per subset are rounded by largest
   remainder; each stratum then gets counts proportional to its size
   (largest remainder within the stratum), adjusted one subject at a time so
   that the subset totals are met exactly. The allocation is fixed; only
   *which* subjects go where is random.
3. ``n_draws`` random splits: draw ``d`` permutes each stratum with
   ``numpy.random.default_rng(derive_seed(seed, "split", d))`` and deals out
   the allocation in the order train, val, test.
4. The kept draw minimises the age imbalance

       D = sum over strata s of  ( max_k mean_age(s, k) - min_k mean_age(s, k) ),

   the range of the subsets' mean ages within each stratum, summed over the
   four strata ("minimum difference in mean age between training, validation
   and test set over the four subgroups"); subsets with no subject in a
   stratum do not enter its range. Ties keep the earliest draw.

Balance is reported by two-way ANOVA (type III sums of squares with sum-to-zero
contrasts, as SPSS's univariate ANOVA) of age and of sex (F = 1, M = 0) on
subset x class, and by counts per subset x class.
"""

from __future__ import annotations

import argparse
import logging

import numpy as np

from .checks import check_range
from .config import derive_seed

log = logging.getLogger(__name__)

SUBSETS = ("train", "val", "test")
CLASSES = ("normal", "reduced")
SEXES = ("F", "M")


class SplitError(ValueError):
    """A split that cannot be made or that leaks subjects between subsets."""


def subset_totals(sizes: dict, n: int) -> dict[str, int]:
    """Subject counts per subset from ``split.sizes`` (fractions or counts) for a cohort of ``n``.

    Raises :class:`SplitError` for counts that exceed ``n`` and for a
    non-zero requested subset that rounds to zero subjects.
    """
    vals = np.array([check_range(f"split.sizes.{k}", float(sizes[k]), 0, exc=SplitError) for k in SUBSETS])
    if (vals <= 1).all() and not (vals == 1).sum() == len(vals):
        if abs(vals.sum() - 1) > 1e-6:
            raise SplitError(f"split.sizes: fractions must sum to 1, got {vals.sum():g} ({sizes})")
        quota = vals * n
        counts = np.floor(quota).astype(int)
        for i in np.argsort(-(quota - counts), kind="stable")[: n - counts.sum()]:
            counts[i] += 1
    else:
        if (vals != np.round(vals)).any():
            raise SplitError(f"split.sizes: give all fractions (<= 1) or all integer counts, got {sizes}")
        counts = vals.astype(int)
        if counts.sum() > n:
            raise SplitError(f"split.sizes: {counts.sum()} subjects requested ({sizes}) but the cohort has only {n}")
    totals = dict(zip(SUBSETS, (int(c) for c in counts)))
    empty = [k for k, v in zip(SUBSETS, vals) if v > 0 and totals[k] == 0]
    if empty:
        raise SplitError(f"split.sizes: subset(s) {empty} get no subject from a cohort of {n} with sizes {sizes}")
    return totals


def allocate(strata_sizes: dict, totals: dict[str, int]) -> dict:
    """Counts per stratum and subset: rows sum to the stratum (minus its share of left-out), columns to ``totals``.

    Parameters
    ----------
    strata_sizes : ``{stratum: n_s}``.
    totals : ``{subset: count}`` with ``sum(totals) <= sum(n_s)``.

    Returns
    -------
    ``{stratum: {subset: count}}`` (a pseudo-subset ``"unused"`` holds the left-out).
    """
    keys = list(strata_sizes)
    n = sum(strata_sizes.values())
    cols = list(SUBSETS) + ["unused"]
    target = np.array([totals[k] for k in SUBSETS] + [n - sum(totals.values())], dtype=int)
    sizes = np.array([strata_sizes[k] for k in keys], dtype=int)
    quota = sizes[:, None] * target[None, :] / max(n, 1)
    alloc = np.floor(quota).astype(int)
    for r in range(len(keys)):  # largest remainder within each stratum: rows exact
        short = sizes[r] - alloc[r].sum()
        for c in np.argsort(-(quota[r] - alloc[r]), kind="stable")[:short]:
            alloc[r, c] += 1
    # move single subjects between subsets inside a stratum until the columns are exact
    while True:
        dev = alloc.sum(axis=0) - target
        if not dev.any():
            break
        over, under = int(np.argmax(dev)), int(np.argmin(dev))
        gain = (alloc[:, over] - quota[:, over]) - (alloc[:, under] - quota[:, under])
        gain[alloc[:, over] == 0] = -np.inf
        r = int(np.argmax(gain))
        alloc[r, over] -= 1
        alloc[r, under] += 1
    return {k: dict(zip(cols, map(int, alloc[i]))) for i, k in enumerate(keys)}


def age_imbalance(table, assignment: dict[str, str]) -> float:
    """Criterion ``D`` of the module docstring for one assignment ``{subject: subset}``."""
    d = 0.0
    sub = table["subject"].map(assignment)
    for _, g in table.assign(_subset=sub).dropna(subset=["_subset"]).groupby(["sex", "label"]):
        means = g.groupby("_subset")["age"].mean()
        if len(means) > 1:
            d += float(means.max() - means.min())
    return d


def _strata(table) -> dict[tuple[str, str], list[str]]:
    out = {}
    for sex in SEXES:
        for lab in CLASSES:
            subj = list(table.loc[(table["sex"] == sex) & (table["label"] == lab), "subject"])
            if subj:
                out[(sex, lab)] = subj
    return out


def make_split(table, sizes: dict, n_draws: int = 100, seed: int = 0):
    """Draw ``n_draws`` stratified splits and keep the most age-balanced one.

    Parameters
    ----------
    table : participants (``subject, age, sex, label``), e.g. from
        :func:`datxai.participants.load_participants`.
    sizes : ``{"train", "val", "test"}`` fractions or counts.
    n_draws : number of random splits (>= 1).
    seed : the master seed (``config["seed"]``).

    Returns
    -------
    (split, info): ``split`` is a DataFrame ``subject, subset`` ordered by
    subset (train, val, test) and, within a subset, by subject id; ``info``
    has ``draw`` (0-based), ``age_imbalance`` (D, years), ``totals`` and
    ``allocation``.

    Raises
    ------
    SplitError
        Too few subjects for the sizes, or a class without any subject in a
        non-empty subset.
    """
    import pandas as pd

    check_range("split.n_draws", n_draws, 1, exc=SplitError)
    if table["subject"].duplicated().any():
        raise SplitError(f"duplicate subject ids: {sorted(set(table.loc[table['subject'].duplicated(), 'subject']))[:10]}")
    totals = subset_totals(sizes, len(table))
    strata = _strata(table)
    alloc = allocate({k: len(v) for k, v in strata.items()}, totals)
    for k in SUBSETS:
        if totals[k] == 0:
            continue
        for lab in CLASSES:
            n = sum(a[k] for (sex, l), a in alloc.items() if l == lab)
            if n == 0:
                have = {l: int((table["label"] == l).sum()) for l in CLASSES}
                raise SplitError(
                    f"split: subset {k!r} would get no {lab!r} subject (cohort has {have}, "
                    f"subset sizes {totals}); use larger sizes or a larger cohort"
                )
    best, best_d, best_draw = None, np.inf, -1
    for draw in range(n_draws):
        rng = np.random.default_rng(derive_seed(seed, "split", draw))
        assignment = {}
        for key in sorted(strata):  # fixed order: the draw depends only on seed and table
            members = sorted(strata[key])
            perm = [members[i] for i in rng.permutation(len(members))]
            start = 0
            for k in SUBSETS:
                for s in perm[start:start + alloc[key][k]]:
                    assignment[s] = k
                start += alloc[key][k]
        d = age_imbalance(table, assignment)
        if d < best_d - 1e-12:
            best, best_d, best_draw = assignment, d, draw
    split = pd.DataFrame({"subject": list(best), "subset": list(best.values())})
    split["_o"] = split["subset"].map({k: i for i, k in enumerate(SUBSETS)})
    split = split.sort_values(["_o", "subject"]).drop(columns="_o").reset_index(drop=True)
    check_leakage(split)
    left_out = len(table) - len(split)
    log.info("split: kept draw %d of %d, age imbalance D = %.3f years; sizes %s%s", best_draw, n_draws, best_d,
             totals, f"; {left_out} subject(s) left out" if left_out else "")
    return split, {"draw": best_draw, "age_imbalance": best_d, "totals": totals,
                   "allocation": {f"{s}/{l}": a for (s, l), a in alloc.items()}}


def check_leakage(split, source: str = "split") -> None:
    """Raise :class:`SplitError` if a subject appears more than once or in an unknown subset."""
    dup = split.loc[split["subject"].duplicated(keep=False)]
    if len(dup):
        where = {s: sorted(g["subset"]) for s, g in dup.groupby("subject")}
        raise SplitError(f"{source}: leakage, subject(s) in more than one subset: {dict(list(where.items())[:10])}")
    bad = sorted(set(split["subset"]) - set(SUBSETS))
    if bad:
        raise SplitError(f"{source}: unknown subset name(s) {bad}; allowed {list(SUBSETS)}")


def two_way_anova(data, dependent: str):
    """Two-way ANOVA of ``dependent`` on ``subset`` x ``label`` (type III, sum contrasts).

    Returns a DataFrame ``term, df, df_resid, F, p`` with terms ``subset``,
    ``label``, ``subset:label``. Uses statsmodels ``ols`` + ``anova_lm``.
    Factors with a single level are dropped from the model (their terms get NaN).
    """
    import pandas as pd
    from statsmodels.formula.api import ols
    from statsmodels.stats.anova import anova_lm

    factors = [f for f in ("subset", "label") if data[f].nunique() > 1]
    rows = []
    if factors:
        rhs = " * ".join(f"C({f}, Sum)" for f in factors)
        fit = ols(f"{dependent} ~ {rhs}", data=data).fit()
        table = anova_lm(fit, typ=3)
        names = {f"C({f}, Sum)": f for f in factors}
        names[":".join(f"C({f}, Sum)" for f in factors)] = ":".join(factors)
        for idx, r in table.iterrows():
            if idx in names:
                rows.append({"term": names[idx], "df": r["df"], "df_resid": fit.df_resid, "F": r["F"], "p": r["PR(>F)"]})
    out = pd.DataFrame(rows, columns=["term", "df", "df_resid", "F", "p"])
    for t in ("subset", "label", "subset:label"):
        if t not in set(out["term"]):
            out = pd.concat([out, pd.DataFrame([{"term": t}])], ignore_index=True)
    return out.set_index("term").loc[["subset", "label", "subset:label"]].reset_index()


def balance_table(table, split):
    """Balance of the split: ANOVA rows (age, sex) and counts per subset x class.

    Returns a long DataFrame with columns ``section`` (``anova`` | ``counts``),
    ``dependent``, ``term``, ``df``, ``df_resid``, ``F``, ``p`` (ANOVA rows)
    and ``subset``, ``label``, ``n``, ``n_female``, ``age_mean``, ``age_sd``
    (count rows; ``subset``/``label`` = ``all`` for margins).
    """
    import pandas as pd

    d = table.merge(split, on="subject", how="inner")
    d = d.assign(female=(d["sex"] == "F").astype(float), age=d["age"].astype(float))
    parts = []
    for dep in ("age", "female"):
        a = two_way_anova(d, dep)
        a.insert(0, "dependent", "sex" if dep == "female" else dep)
        a.insert(0, "section", "anova")
        parts.append(a)
    rows = []
    for k in (*SUBSETS, "all"):
        for lab in (*CLASSES, "all"):
            g = d[((d["subset"] == k) | (k == "all")) & ((d["label"] == lab) | (lab == "all"))]
            rows.append({"section": "counts", "subset": k, "label": lab, "n": len(g),
                         "n_female": int(g["female"].sum()), "age_mean": g["age"].mean() if len(g) else np.nan,
                         "age_sd": g["age"].std(ddof=1) if len(g) > 1 else np.nan})
    parts.append(pd.DataFrame(rows))
    cols = ["section", "dependent", "term", "df", "df_resid", "F", "p", "subset", "label", "n", "n_female", "age_mean", "age_sd"]
    return pd.concat(parts, ignore_index=True).reindex(columns=cols)


def run(participants, out_split, out_balance, sizes: dict, n_draws: int, seed: int) -> dict:
    """Load the participants, split, check, write ``split.tsv`` and ``balance.tsv`` atomically."""
    from .io import write_tsv
    from .participants import load_participants

    table = load_participants(participants)
    split, info = make_split(table, sizes, n_draws, seed)
    balance = balance_table(table, split)
    write_tsv(balance, out_balance)
    write_tsv(split, out_split)
    an = balance[balance["section"] == "anova"]
    for r in an.itertuples():
        log.info("ANOVA %s ~ %s: F = %.3g, P = %.3g", r.dependent, r.term, r.F, r.p)
    return info


def add_cli(subparsers) -> None:
    """``datxai split``: stratified, age-balanced train/val/test split of a participants sheet."""
    p = subparsers.add_parser("split", help="stratified train/val/test split (sex x class, age-balanced)",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("participants", help="participants.tsv (subject, age, sex, label)")
    p.add_argument("--out-dir", required=True, help="folder for split.tsv and balance.tsv")
    p.add_argument("--config", help="config YAML (split.sizes, split.n_draws, seed)")
    p.add_argument("--sizes", type=float, nargs=3, metavar=("TRAIN", "VAL", "TEST"),
                   help="fractions or counts (overrides the config; default 0.6 0.1 0.3)")
    p.add_argument("--seed", type=int, help="master seed (overrides the config; default 0)")
    p.add_argument("--n-draws", type=int, help="number of random splits (overrides the config; default 100)")
    p.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .config import load_config

    cfg = load_config(args.config) if args.config else {"seed": 0, "split": {"n_draws": 100}}
    sizes = cfg["split"].get("sizes") or {"train": 0.6, "val": 0.1, "test": 0.3}
    if args.sizes:
        sizes = dict(zip(SUBSETS, args.sizes))
    seed = args.seed if args.seed is not None else cfg["seed"]
    out = Path(args.out_dir)
    info = run(args.participants, out / "split.tsv", out / "balance.tsv", sizes,
               args.n_draws or cfg["split"]["n_draws"], seed)
    log.info("wrote %s and %s (draw %d)", out / "split.tsv", out / "balance.tsv", info["draw"])
    return 0
