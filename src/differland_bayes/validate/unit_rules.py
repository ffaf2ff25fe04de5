"""Classify ``units`` attributes against :data:`differland_bayes.units.QUANTITIES`.

Unlike :func:`differland_bayes.units.convert` these helpers neither log nor raise: the
validator reports what it finds and carries on.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..units import QUANTITIES, normalise_unit

__all__ = ["stream_unit_spellings", "unit_status"]


def unit_status(units: object, quantity: str) -> tuple[str, Callable[[np.ndarray], np.ndarray]]:
    """Classify a ``units`` attribute for a quantity of :data:`units.QUANTITIES`.

    Returns ``(status, to_canonical)`` with status ``"ok"``, ``"convert"``, ``"missing"``
    or ``"unknown"``; unlike :func:`units.convert` this neither logs nor raises.
    """
    q = QUANTITIES[quantity]
    if units is None:
        return "missing", _identity
    key = normalise_unit(str(units))
    if key in {normalise_unit(a) for a in (q.canonical, *q.aliases)}:
        return "ok", _identity
    for src, fn in q.conversions.items():
        if key == normalise_unit(src):
            return "convert", fn
    return "unknown", _identity


def _identity(x: np.ndarray) -> np.ndarray:
    return x


def stream_unit_spellings(canonical: str) -> set[str]:
    """Normalised spellings equivalent to a stream's canonical unit (no conversion)."""
    key = normalise_unit(canonical)
    out = {key}
    for q in QUANTITIES.values():
        if normalise_unit(q.canonical) == key:
            out |= {normalise_unit(a) for a in q.aliases}
    return out
