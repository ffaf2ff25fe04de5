"""Carbon-pool budgets of a simulation and initial pools in dynamic equilibrium.

Pure JAX, shared by the steady-state EDC of the Bayesian model
(:func:`differland_bayes.bayes.likelihood.steady_state_edc`, spec §4.4) and by
prediction at new sites, where the initial pools are put in equilibrium with the
parameters and the forcing instead of being drawn independently of them.

For each carbon pool ``p`` (labile, foliar, root, wood, litter, SOM) the inflows and
outflows of spec §4.4 are summed over the record. A pool is in dynamic equilibrium when
its inflow and outflow balance over the record and its state at the ends of calendar
years equals its initial value: ``S_p = R_p * mean(pool_p at year ends) / pool_p(0) = 1``
with ``R_p = sum(in_p) / sum(out_p)``. Because every outflow is first order in its pool,
``R_p * mean(year-end pool)`` estimates the equilibrium pool, and iterating
``pool_p(0) <- R_p * mean(year-end pool_p)`` converges to it.

Only the pools that do not feed back on their own inputs are put in equilibrium
(:data:`EQUILIBRIUM_POOLS`: root, wood, litter, SOM). The labile and foliar pools set
the canopy and so the GPP that feeds every pool: iterating them can fall into the
trivial equilibrium without vegetation, and they forget their initial values within a
year anyway. With the canopy pools held, the inputs of the other pools no longer depend
on them and the iteration converges in a few steps.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from .simulate import simulate

__all__ = [
    "BUDGET_EPS",
    "CARBON_POOLS",
    "EQUILIBRIUM_POOLS",
    "budget_ratios",
    "carbon_pool_budgets",
    "equilibrium_pools",
    "year_end_weights",
]

#: the epsilon of spec §4.4 (denominator guard), gC m-2
BUDGET_EPS = 1e-3

#: carbon pools with a budget, in the order of the models' ``Pools``
CARBON_POOLS: tuple[str, ...] = ("labile", "foliar", "root", "wood", "litter", "som")
#: pools that :func:`equilibrium_pools` puts in equilibrium by default
EQUILIBRIUM_POOLS: tuple[str, ...] = ("root", "wood", "litter", "som")


def year_end_weights(doy: jnp.ndarray, delta_t: jnp.ndarray) -> jnp.ndarray:
    """Weights averaging the end-of-step pools at the ends of calendar years.

    A step ends a year when the next step's day of year is smaller; the last step does
    when ``doy + delta_t > 365``. Monthly series give the published indices 11, 23, ...
    If no step ends a year, the last step gets all the weight.

    Parameters
    ----------
    doy, delta_t : jax.Array
        Day of year (days) and step length (days), ``(..., time)``.

    Returns
    -------
    jax.Array
        ``(..., time)`` non-negative weights summing to 1 along time.
    """
    wrap = doy[..., 1:] < doy[..., :-1]
    last = doy[..., -1:] + delta_t[..., -1:] > 365.0
    w = jnp.concatenate([wrap, last], axis=-1).astype(jnp.result_type(doy, float))
    fallback = jnp.zeros_like(w).at[..., -1].set(1.0)
    n = jnp.sum(w, axis=-1, keepdims=True)
    w = jnp.where(n > 0, w, fallback)
    return w / jnp.sum(w, axis=-1, keepdims=True)


def _field(out: Any, name: str) -> jnp.ndarray:
    value = getattr(out, name, None)
    return jnp.zeros_like(out.gpp) if value is None else value


def carbon_pool_budgets(outputs: Any) -> dict[str, tuple[jnp.ndarray, jnp.ndarray]]:
    """Inflow and outflow rates of every carbon pool (spec §4.4).

    Parameters
    ----------
    outputs : NamedTuple
        Model outputs, fields ``(..., time)`` (fire fluxes taken as 0 when the model
        has none, as DALEC990).

    Returns
    -------
    dict
        Pool name (:data:`CARBON_POOLS`) -> ``(inflow, outflow)``, each ``(..., time)``
        in gC m-2 d-1.
    """
    f = lambda n: _field(outputs, n)  # noqa: E731
    fc = {p: f(f"{p}_fire_combust") for p in CARBON_POOLS}
    ft = {p: f(f"{p}_fire_transfer") for p in CARBON_POOLS[:5]}
    return {
        "labile": (f("labile_production"), f("labile_release") + fc["labile"] + ft["labile"]),
        "foliar": (
            f("leaf_production") + f("labile_release"),
            f("leaf_litter") + fc["foliar"] + ft["foliar"],
        ),
        "root": (f("root_production"), f("root_litter") + fc["root"] + ft["root"]),
        "wood": (f("wood_production"), f("wood_litter") + fc["wood"] + ft["wood"]),
        "litter": (
            f("leaf_litter") + f("root_litter") + ft["labile"] + ft["foliar"] + ft["root"],
            f("respiration_hetero_litter") + f("litter_to_som") + fc["litter"] + ft["litter"],
        ),
        "som": (
            f("wood_litter") + f("litter_to_som") + ft["wood"] + ft["litter"],
            f("respiration_hetero_som") + fc["som"],
        ),
    }


def budget_ratios(
    outputs: Any, forcing: Any, *, eps: float = BUDGET_EPS
) -> dict[str, tuple[jnp.ndarray, jnp.ndarray]]:
    """``R_p`` and the mean year-end pool of every carbon pool.

    Parameters
    ----------
    outputs : NamedTuple
        Model outputs, fields ``(..., time)``.
    forcing : NamedTuple
        Forcing with ``doy`` (days) and ``delta_t`` (days), ``(..., time)``.
    eps : float
        Guard of the outflow sum (gC m-2).

    Returns
    -------
    dict
        Pool name -> ``(R_p, mean year-end pool)``, each ``(...)``: the record's inflow
        over its outflow (dimensionless) and the pool at the ends of calendar years
        (gC m-2).
    """
    dt = jnp.broadcast_to(forcing.delta_t, outputs.gpp.shape)
    w = year_end_weights(jnp.broadcast_to(forcing.doy, outputs.gpp.shape), dt)
    result = {}
    for p, (inflow, outflow) in carbon_pool_budgets(outputs).items():
        ratio = jnp.sum(inflow * dt, -1) / jnp.maximum(jnp.sum(outflow * dt, -1), eps)
        result[p] = (ratio, jnp.sum(getattr(outputs, f"next_{p}_pool") * w, -1))
    return result


def equilibrium_pools(
    model: Any,
    params: Any,
    pools0: Any,
    forcing: Any,
    *,
    iterations: int = 3,
    floor: float = 1.0,
    pools: tuple[str, ...] = EQUILIBRIUM_POOLS,
) -> Any:
    """Return initial carbon pools of one site in dynamic equilibrium with its forcing.

    Starting from ``pools0``, each iteration simulates the record and sets each of
    ``pools`` to ``R_p * mean(year-end pool_p)`` (see the module docstring); the other
    pools (by default labile, foliar and water) are kept.

    Parameters
    ----------
    model : AbstractDalec
        The process model.
    params : NamedTuple
        ``model.Params`` of one site (scalars).
    pools0 : NamedTuple
        ``model.Pools`` of one site: the starting guess (gC m-2; water in mm).
    forcing : NamedTuple
        ``model.Forcing`` of one site, ``(time,)`` fields, at least a year long.
    iterations : int
        Fixed-point iterations (each one simulation of the record).
    floor : float
        Lower bound of an equilibrium pool (gC m-2), keeping pools positive where a
        pool has no inflow.
    pools : tuple of str
        The carbon pools put in equilibrium (names in :data:`CARBON_POOLS`).

    Returns
    -------
    NamedTuple
        ``model.Pools`` with the carbon pools in equilibrium.

    Notes
    -----
    Pure and traceable (``jax.vmap`` over sites, ``jax.grad``). The equilibrium is that
    of the forcing record taken as a repeating cycle: it ignores disturbance history
    and stand age, so it suits sites predicted without observations better than fitted
    sites, whose initial pools the data inform.
    """
    if iterations < 1:
        raise ValueError(f"iterations: expected an integer >= 1, found {iterations}")
    unknown = sorted(set(pools) - set(CARBON_POOLS))
    if unknown:
        raise ValueError(f"pools: expected names in {list(CARBON_POOLS)}, found {unknown}")

    def update(state: Any, _: Any) -> tuple[Any, None]:
        out = simulate(model, params, state, forcing)
        ratios = budget_ratios(out, forcing)
        new = {p: jnp.maximum(ratios[p][0] * ratios[p][1], floor) for p in pools}
        return state._replace(**new), None

    state, _ = jax.lax.scan(update, pools0, None, length=iterations)
    return state
