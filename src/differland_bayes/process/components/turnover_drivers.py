"""Forcing- and parameter-only turnover terms shared by the DALEC variants."""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from .carbon import CarbonRates, carbon_rates, rate_modifier
from .phenology import pulse

__all__ = ["TurnoverDrivers", "turnover_drivers"]


class TurnoverDrivers(NamedTuple):
    """Rate modifier, phenology pulses and per-unit-pool loss rates of every step."""

    temperate: jnp.ndarray  #: temperature-moisture rate modifier, 1
    lff: jnp.ndarray  #: leaf-fall pulse, d-1
    lrf: jnp.ndarray  #: labile-release pulse, d-1
    rates: CarbonRates  #: mean loss rates over the step, d-1


def turnover_drivers(params, forcing, *, conserving: bool) -> TurnoverDrivers:
    """Compute :class:`TurnoverDrivers` for a whole series (fields of ``forcing`` on time).

    Parameters
    ----------
    params : NamedTuple
        Model parameters (``Q10``, ``moisture_factor``, lifespans, pulse periods and
        phases ``Bday``/``Fday``, turnover rates).
    forcing : NamedTuple
        Model forcing with ``days``, temperatures, ``precip``, the long-term means and
        ``delta_t``.
    conserving : bool
        Use the bounded, competing loss rates of the conserving mode.
    """
    f = forcing
    tau = rate_modifier(
        f.t_min,
        f.t_max,
        f.precip,
        f.t_mean_longterm,
        f.precip_mean_longterm,
        params.Q10,
        params.moisture_factor,
    )
    lff = pulse(f.days, params.leaf_lifespan, params.leaf_fall_period, params.Fday)
    lrf = pulse(f.days, params.lab_lifespan, params.clab_release_period, params.Bday)
    rates = carbon_rates(lff, lrf, tau, f.delta_t, params, conserving=conserving)
    return TurnoverDrivers(temperate=tau, lff=lff, lrf=lrf, rates=rates)
