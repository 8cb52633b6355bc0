"""Helpers of the reliability suite: snapshots of folders (inputs untouched, nothing half-written)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def tree_state(*roots) -> dict[str, str]:
    """``{path: sha256}`` of every file (hidden and temporary ones included) under ``roots``."""
    state = {}
    for root in map(Path, roots):
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink())
        for p in files:
            state[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "link"
    return state


def assert_untouched(before: dict[str, str], *roots) -> None:
    """The files under ``roots`` are exactly those of ``before``, byte for byte (nothing added, changed, removed)."""
    after = tree_state(*roots)
    changed = sorted(p for p in before.keys() & after.keys() if before[p] != after[p])
    added, removed = sorted(after.keys() - before.keys()), sorted(before.keys() - after.keys())
    assert not (changed or added or removed), f"inputs touched: changed {changed}, added {added}, removed {removed}"


def assert_nothing_written(folder) -> None:
    """No file at all (no temporary ``.name.XXXX`` leftovers either) under ``folder``."""
    folder = Path(folder)
    left = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir()) if folder.exists() else []
    assert not left, f"partial output left behind in {folder}: {left}"


def assert_clear_error(exc_info, names, problem: str) -> str:
    """The message names every item of ``names`` (file, subject, key) and matches ``problem`` (a regex)."""
    import re

    msg = str(exc_info.value)
    for name in [names] if isinstance(names, (str, Path)) else names:
        assert str(name) in msg, f"the message does not name {name!r}: {msg}"
    assert re.search(problem, msg), f"the message does not say {problem!r}: {msg}"
    return msg
