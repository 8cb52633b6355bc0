"""Which subjects the cohort template is built from (light: numpy only, imported when the DAG is built)."""

from __future__ import annotations

import numpy as np

from ..checks import check_range
from ..io import InputError


def select_template_subjects(participants, n: int, seed: int) -> list[str]:
    """A balanced, reproducible choice of ``n`` subjects by their visual-read ``label``.

    Half ``normal``, half ``reduced`` (the other class fills any shortage),
    drawn with ``numpy.random.default_rng(seed)`` from the subjects sorted by
    id. ``participants`` is a DataFrame with ``subject`` and ``label``
    (normal | reduced). Returns the chosen ids, sorted.
    """
    for col in ("subject", "label"):
        if col not in participants.columns:
            raise InputError(f"participants: missing column {col!r} needed to choose template subjects")
    bad = sorted(set(participants["label"]) - {"normal", "reduced"})
    if bad:
        raise InputError(f"participants: label must be 'normal' or 'reduced', found {bad}")
    n = check_range("normalize.template_subjects", int(n), 2)
    rng = np.random.default_rng(seed)
    pools = {lab: sorted(participants.loc[participants["label"] == lab, "subject"].astype(str)) for lab in ("normal", "reduced")}
    want = {"normal": n - n // 2, "reduced": n // 2}
    for a, b in (("normal", "reduced"), ("reduced", "normal")):
        short = want[a] - len(pools[a])
        if short > 0:
            want[a] -= short
            want[b] += short
    chosen = []
    for lab in ("normal", "reduced"):
        k = min(want[lab], len(pools[lab]))
        if k:
            chosen += list(rng.choice(pools[lab], size=k, replace=False))
    if len(chosen) < 2:
        raise InputError(f"participants: only {len(chosen)} subject(s) available for the template, need >= 2")
    return sorted(str(c) for c in chosen)
