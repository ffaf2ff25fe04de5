"""Leaf-fall and labile-release pulses (CARDAMOM/DALEC phenology, spec §1.3h).

Each pulse is a 365.25-day periodic Gaussian-like bump whose integral over a year sheds a
fraction ``1/L`` of the pool, with ``L`` the pool's lifespan in years.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jax.typing import ArrayLike

__all__ = ["pulse"]

_OFFSET_POLY = (
    0.000023599784710,
    0.000332730053021,
    0.000901865258885,
    -0.005437736864888,
    -0.020836027517787,
    0.126972018064287,
    -0.188459767342504,
)
_SF = 365.25 / math.pi


def _offset(lifespan: jnp.ndarray, width: jnp.ndarray) -> jnp.ndarray:
    z = jnp.log(lifespan - 1.0)
    acc = 0.0
    for coef in _OFFSET_POLY:  # Horner form of p1 z^6 + ... + p7
        acc = acc * z + coef
    return width * acc


def pulse(days: ArrayLike, lifespan: ArrayLike, period: ArrayLike, phase: ArrayLike) -> jnp.ndarray:
    """Daily fractional rate of a phenology pulse.

    Parameters
    ----------
    days : array_like
        Time stamp, d (days since the model's epoch; only its value modulo 365.25 with
        respect to ``phase`` matters).
    lifespan : array_like
        Pool lifespan ``L`` (> 1), yr.
    period : array_like
        Pulse width parameter, d.
    phase : array_like
        Day of the pulse (``Fday`` or ``Bday``), d.

    Returns
    -------
    jax.Array
        Fractional loss rate, d-1.
    """
    f = 0.5 * jnp.log(lifespan / (lifespan - 1.0))
    w = period / math.sqrt(2.0)
    o = _offset(lifespan, w)
    arg = _SF * jnp.sin((days - phase + o) / _SF) / w
    return (2.0 / math.sqrt(math.pi)) * (f / w) * jnp.exp(-(arg**2))
