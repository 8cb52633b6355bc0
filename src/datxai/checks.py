"""One wording for every choice and range error of the package.

:func:`check_choice` and :func:`check_range` raise (``ValueError`` unless the
caller passes ``exc=``, e.g. :class:`datxai.io.InputError` for a file's value)
with one message form, ``<name> must be <requirement>; got <value>``::

    reconstruct.filter must be one of ['ram-lak', 'shepp-logan', 'cosine', 'hamming', 'hann']; got 'hanning'
    train.epochs must be >= 1; got 0
    group.percentile must be in (0, 100); got 100
    explain.epsilon must be a number > 0; got '1e-4'

``name`` is the config key (``section.key``) where the caller knows it, the
argument name otherwise, prefixed with the file (``"<path>: RotationDirection"``)
for a value read from a file. Allowed values are listed in the order given (so
that a constant's own order shows, and mixed types such as ``None`` and strings
need no sort). A bottom-layer module: it imports nothing from datxai (nor numpy).
"""

from __future__ import annotations

import numbers


def _plain(value):
    """numpy scalars as Python ones, so that messages read ``1.5``, not ``np.float64(1.5)``."""
    item = getattr(value, "item", None)
    if type(value).__module__ == "numpy" and callable(item) and getattr(value, "ndim", None) == 0:
        return item()
    return value


def _bound(b) -> str:
    b = _plain(b)
    return str(int(b)) if isinstance(b, float) and b.is_integer() else str(b)


def _equal(v, a) -> bool:
    """``v == a`` as a plain truth value; False for a bool against a non-bool and for elementwise results (arrays)."""
    if isinstance(v, bool) != isinstance(a, bool):
        return False
    try:
        eq = v == a
    except Exception:  # noqa: BLE001 - an object that cannot be compared is not a choice
        return False
    return type(eq).__name__ in ("bool", "bool_") and bool(eq)


def check_choice(name: str, value, allowed, *, exc: type[Exception] = ValueError):
    """``value`` if it is one of ``allowed``; otherwise raise ``exc`` naming ``name`` and the allowed values.

    Membership is ``==`` (so ``6.0`` matches ``6``), except that a bool matches only a bool
    (``True`` is not the choice ``1``). Returns ``value`` unchanged.
    """
    allowed = [_plain(a) for a in allowed]
    v = _plain(value)
    if not any(_equal(v, a) for a in allowed):
        raise exc(f"{name} must be one of {allowed!r}; got {v!r}")
    return value


def check_range(name: str, value, low=None, high=None, *, low_inclusive: bool = True, high_inclusive: bool = True,
                exc: type[Exception] = ValueError):
    """``value`` if it is a real number within the bounds; otherwise raise ``exc`` naming ``name`` and the bounds.

    ``low``/``high`` ``None``: no bound on that side. Refused: NaN (it compares with
    nothing), bools and non-numbers (strings, ``None``, arrays). Infinities obey the
    bounds like any number (``inf`` passes ``>= 1``). Returns ``value`` unchanged.
    """
    if low is not None and high is not None:
        bounds = (f"in {'[' if low_inclusive else '('}{_bound(low)}, "
                  f"{_bound(high)}{']' if high_inclusive else ')'}")
    elif low is not None:
        bounds = f"{'>=' if low_inclusive else '>'} {_bound(low)}"
    elif high is not None:
        bounds = f"{'<=' if high_inclusive else '<'} {_bound(high)}"
    else:
        bounds = "a number"
    v = _plain(value)
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        what = bounds if bounds == "a number" else f"a number {bounds}"
        raise exc(f"{name} must be {what}; got {v!r}")
    ok = v == v  # False for NaN
    if ok and low is not None:
        ok = v >= low if low_inclusive else v > low
    if ok and high is not None:
        ok = v <= high if high_inclusive else v < high
    if not ok:
        raise exc(f"{name} must be {bounds}; got {v!r}")
    return value
