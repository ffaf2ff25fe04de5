"""Units the process models use, the spellings we accept, and conversions.

Each canonical quantity has one unit. A ``units`` attribute is matched after
normalisation (case, spaces, ``/`` vs negative exponents); a unit that is known but
different is converted with an INFO log record; an unknown unit is an error.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["QUANTITIES", "Quantity", "UnitError", "convert", "normalise_unit"]

log = logging.getLogger(__name__)

SECONDS_PER_DAY = 86400.0
MJ_PER_W_DAY = SECONDS_PER_DAY * 1e-6  #: 1 W m-2 sustained for a day = 0.0864 MJ m-2 d-1
KELVIN_OFFSET = 273.15


class UnitError(ValueError):
    """A ``units`` attribute is missing, unknown, or cannot be converted."""


def normalise_unit(u: str) -> str:
    """Normalise a unit string: lower case, no spaces or ``^``/``*``, ``/x`` as ``x-1``.

    ``"MJ/m2/d"``, ``"MJ m-2 d-1"`` and ``"MJ m^-2 day^-1"`` all become ``"mjm-2d-1"``.
    """
    s = u.strip().lower().replace("°", "deg").replace("^", "").replace("**", "")
    s = s.replace("μ", "u").replace("µ", "u")
    parts = s.split("/")
    out = [re.sub(r"[\s*·.]+", "", parts[0])]
    for p in parts[1:]:
        p = re.sub(r"[\s*·.]+", "", p)
        m = re.fullmatch(r"([a-z]+)(\d*)", p)
        out.append(f"{m.group(1)}-{m.group(2) or 1}" if m else p)
    s = "".join(out)
    return s.replace("day-1", "d-1").replace("days", "d").replace("day", "d")


@dataclass(frozen=True)
class Quantity:
    """A canonical quantity: its unit and how other known units convert to it."""

    name: str
    canonical: str
    aliases: tuple[str, ...]
    conversions: dict[str, Callable[[np.ndarray], np.ndarray]]

    def accepted(self) -> list[str]:
        """Every accepted spelling, canonical first."""
        return [self.canonical, *self.aliases, *self.conversions]


def _q(name, canonical, aliases=(), conversions=None) -> Quantity:
    return Quantity(name, canonical, tuple(aliases), dict(conversions or {}))


QUANTITIES: dict[str, Quantity] = {
    "temperature": _q(
        "temperature",
        "degC",
        ["deg C", "degrees C", "degree_Celsius", "celsius", "°C", "C"],
        {"K": lambda x: x - KELVIN_OFFSET, "kelvin": lambda x: x - KELVIN_OFFSET},
    ),
    "radiation": _q(
        "radiation",
        "MJ m-2 d-1",
        ["MJ/m2/d", "MJ/m2/day", "MJ m-2 day-1"],
        {"W m-2": lambda x: x * MJ_PER_W_DAY, "W/m2": lambda x: x * MJ_PER_W_DAY},
    ),
    "co2": _q("co2", "ppm", ["ppmv", "umol mol-1", "umol/mol"]),
    "vpd": _q(
        "vpd", "hPa", ["hPA", "mbar", "mb"], {"kPa": lambda x: x * 10.0, "Pa": lambda x: x / 100.0}
    ),
    "precipitation": _q(
        "precipitation",
        "mm d-1",
        ["mm/day", "mm/d", "mm day-1", "kg m-2 d-1", "kg m-2 day-1"],
        {"kg m-2 s-1": lambda x: x * SECONDS_PER_DAY, "mm s-1": lambda x: x * SECONDS_PER_DAY},
    ),
    "fraction": _q(
        "fraction",
        "1",
        ["", "-", "fraction", "dimensionless", "0-1"],
        {"%": lambda x: x / 100.0, "percent": lambda x: x / 100.0},
    ),
    "latitude": _q(
        "latitude",
        "degrees_north",
        ["degree_north", "degrees north", "deg N", "degN", "°N", "degrees"],
    ),
}


def convert(values: np.ndarray, units: str | None, quantity: str, *, variable: str) -> np.ndarray:
    """Return ``values`` in the canonical unit of ``quantity``.

    Parameters
    ----------
    values : numpy.ndarray
        The data.
    units : str or None
        The ``units`` attribute as found.
    quantity : str
        A key of :data:`QUANTITIES`.
    variable : str
        Variable name, used in messages.

    Raises
    ------
    UnitError
        If ``units`` is missing or neither an accepted spelling nor convertible.
    """
    q = QUANTITIES[quantity]
    if units is None:
        raise UnitError(
            f"variable {variable!r} has no 'units' attribute; expected {q.canonical!r} "
            f"(or one of {q.accepted()[1:]})"
        )
    key = normalise_unit(units)
    if key in {normalise_unit(a) for a in (q.canonical, *q.aliases)}:
        return values
    for src, fn in q.conversions.items():
        if key == normalise_unit(src):
            log.info("converted %s from %r to %r", variable, units, q.canonical)
            return fn(values)
    raise UnitError(
        f"variable {variable!r}: unknown units {units!r} for {q.name}; expected "
        f"{q.canonical!r} or one of {q.accepted()[1:]}"
    )
