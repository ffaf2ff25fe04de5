"""Carbon allocation, turnover and the clipped update of the six carbon pools.

Shared by DALEC993 and DALEC990 (spec §1.3f-k). All fluxes are daily rates
(gC m-2 d-1); a pool changes by flux times the step length ``delta_t`` (d).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
from jax.typing import ArrayLike

from .turnover import step_loss_rate, step_loss_rate_bounded

__all__ = [
    "POOL_MAX",
    "POOL_MIN",
    "CarbonFluxes",
    "CarbonPools",
    "CarbonRates",
    "carbon_rates",
    "rate_modifier",
    "update_carbon",
]

POOL_MIN = 1.0  #: lower clipping bound of every pool, gC m-2 (water: mm)


class CarbonPools(NamedTuple):
    """The six carbon pools, gC m-2."""

    labile: jnp.ndarray
    foliar: jnp.ndarray
    root: jnp.ndarray
    wood: jnp.ndarray
    litter: jnp.ndarray
    som: jnp.ndarray


#: upper clipping bounds, gC m-2 (the initial-pool bounds of spec §2.3)
POOL_MAX = CarbonPools(2000.0, 2000.0, 2000.0, 1e5, 2000.0, 2e5)


class CarbonFluxes(NamedTuple):
    """Carbon fluxes of one step after clipping adjustments, gC m-2 d-1."""

    respiration_auto: jnp.ndarray
    leaf_production: jnp.ndarray
    labile_production: jnp.ndarray
    root_production: jnp.ndarray
    wood_production: jnp.ndarray
    labile_release: jnp.ndarray
    leaf_litter: jnp.ndarray
    wood_litter: jnp.ndarray
    root_litter: jnp.ndarray
    respiration_hetero_litter: jnp.ndarray
    respiration_hetero_som: jnp.ndarray
    litter_to_som: jnp.ndarray


class CarbonRates(NamedTuple):
    """Per-unit-pool mean loss rates over a step, d-1 (forcing and parameters only)."""

    labile_release: jnp.ndarray
    leaf_litter: jnp.ndarray
    wood_litter: jnp.ndarray
    root_litter: jnp.ndarray
    litter_respiration: jnp.ndarray
    litter_decomposition: jnp.ndarray
    som_respiration: jnp.ndarray


def rate_modifier(
    t_min: ArrayLike,
    t_max: ArrayLike,
    precip: ArrayLike,
    t_mean_longterm: ArrayLike,
    precip_mean_longterm: ArrayLike,
    q10: ArrayLike,
    moisture_factor: ArrayLike,
) -> jnp.ndarray:
    """Temperature-moisture modifier of heterotrophic rates ("temperate"), 1.

    ``exp(Q10 ((Tmax + Tmin)/2 - MAT)) * ((P / MAP - 1) * moisture_factor + 1)`` with
    temperatures in degC, ``Q10`` in degC-1 and precipitation in mm d-1.
    """
    t_mean = 0.5 * (t_max + t_min)
    moist = (precip / precip_mean_longterm - 1.0) * moisture_factor + 1.0
    return jnp.exp(q10 * (t_mean - t_mean_longterm)) * moist


def carbon_rates(
    lff: ArrayLike,
    lrf: ArrayLike,
    tau: ArrayLike,
    delta_t: ArrayLike,
    params,
    *,
    conserving: bool,
) -> CarbonRates:
    """Turn daily fractional rates into mean loss rates over the step.

    Parameters
    ----------
    lff, lrf : array_like
        Leaf-fall and labile-release pulse rates, d-1.
    tau : array_like
        Rate modifier of heterotrophic processes, 1.
    delta_t : array_like
        Step length, d.
    params : NamedTuple
        Model parameters (``tor_wood``, ``tor_root``, ``tor_litter``,
        ``decomposition_rate``, ``tor_som``; d-1).
    conserving : bool
        If True, rates are clipped to ``[0, 1]`` d-1 and litter respiration and
        decomposition compete for the same litter (spec §8 item 7); otherwise the
        published independent, unguarded conversion is used.
    """
    if not conserving:
        g = step_loss_rate
        return CarbonRates(
            labile_release=g(lrf, delta_t),
            leaf_litter=g(lff, delta_t),
            wood_litter=g(params.tor_wood, delta_t),
            root_litter=g(params.tor_root, delta_t),
            litter_respiration=g(tau * params.tor_litter, delta_t),
            litter_decomposition=g(tau * params.decomposition_rate, delta_t),
            som_respiration=g(tau * params.tor_som, delta_t),
        )
    g = step_loss_rate_bounded
    k_rh = tau * params.tor_litter
    k_d = tau * params.decomposition_rate
    k_lit = k_rh + k_d
    g_lit = g(k_lit, delta_t)
    share_rh = params.tor_litter / (params.tor_litter + params.decomposition_rate)
    return CarbonRates(
        labile_release=g(lrf, delta_t),
        leaf_litter=g(lff, delta_t),
        wood_litter=g(params.tor_wood, delta_t),
        root_litter=g(params.tor_root, delta_t),
        litter_respiration=g_lit * share_rh,
        litter_decomposition=g_lit * (1.0 - share_rh),
        som_respiration=g(tau * params.tor_som, delta_t),
    )


def _clip(new, old, lo, hi, net_other, outflow, dt):
    """Clip ``new`` to ``[lo, hi]`` and rebalance ``outflow`` = ``net_other - dC/dt``."""
    below = new < lo
    new = jnp.where(below, lo, new)
    outflow = jnp.where(below, net_other - (new - old) / dt, outflow)
    above = new > hi
    new = jnp.where(above, hi, new)
    outflow = jnp.where(above, net_other - (new - old) / dt, outflow)
    return new, outflow


def update_carbon(
    pools: CarbonPools,
    gpp: ArrayLike,
    rates: CarbonRates,
    delta_t: ArrayLike,
    params,
    *,
    conserving: bool,
) -> tuple[CarbonPools, CarbonFluxes]:
    """Allocate GPP, apply turnover and update the carbon pools with clipping.

    Pools are clipped to ``[POOL_MIN, POOL_MAX]``; a clip rebalances one outflow so that
    the pool's budget still closes, in the published order (labile, foliar, root, wood,
    litter, SOM). Published quirks kept in the faithful mode: a foliar pool clipped at its
    minimum sets leaf litter to the constant 1 gC m-2 d-1 (spec §1.3k.2, §8 item 9), and
    a pool that starts a step below the minimum (possible after fire) is lifted to it by
    a negative outflow. The conserving mode rebalances leaf litter, and its floor is
    ``min(POOL_MIN, start + inflow * dt)`` so that a clip only ever reduces losses: every
    outflow stays >= 0.

    Parameters
    ----------
    pools : CarbonPools
        Pools at the start of the step, gC m-2.
    gpp : array_like
        Gross primary production, gC m-2 d-1.
    rates : CarbonRates
        Per-unit-pool loss rates from :func:`carbon_rates`, d-1.
    delta_t : array_like
        Step length, d.
    params : NamedTuple
        Allocation parameters ``f_gpp``, ``f_fol``, ``flab``, ``f_root`` (1).
    conserving : bool
        Use the mass-conserving foliar clip.

    Returns
    -------
    (CarbonPools, CarbonFluxes)
        Pools at the end of the step (before any fire) and the adjusted fluxes.
    """
    dt = delta_t
    # Allocation (sequential fractions, spec §1.3g).
    r_a = params.f_gpp * gpp
    p_fol = (gpp - r_a) * params.f_fol
    p_lab = (gpp - r_a - p_fol) * params.flab
    p_root = (gpp - r_a - p_fol - p_lab) * params.f_root
    p_wood = gpp - r_a - p_fol - p_lab - p_root
    # Potential losses.
    r_lab = pools.labile * rates.labile_release
    l_fol = pools.foliar * rates.leaf_litter
    l_wood = pools.wood * rates.wood_litter
    l_root = pools.root * rates.root_litter
    rh_lit = pools.litter * rates.litter_respiration
    d_lit = pools.litter * rates.litter_decomposition
    rh_som = pools.som * rates.som_respiration
    hi = POOL_MAX

    def floor(old, inflow):
        # Faithful: a hard floor of 1 gC m-2, even when the pool started below it (after
        # fire), which then needs a negative outflow. Conserving: the floor never exceeds
        # what the pool would hold with no outflow, so clipping only ever reduces losses.
        if conserving:
            return jnp.minimum(POOL_MIN, old + inflow * dt)
        return POOL_MIN

    lab = pools.labile + (p_lab - r_lab) * dt
    lab, r_lab = _clip(lab, pools.labile, floor(pools.labile, p_lab), hi.labile, p_lab, r_lab, dt)

    fol_in = p_fol + r_lab
    fol = pools.foliar + (fol_in - l_fol) * dt
    lo = floor(pools.foliar, fol_in)
    below = fol < lo
    fol = jnp.where(below, lo, fol)
    if conserving:
        l_fol = jnp.where(below, fol_in - (fol - pools.foliar) / dt, l_fol)
    else:
        l_fol = jnp.where(below, POOL_MIN, l_fol)  # published bug: constant litter flux
    above = fol > hi.foliar
    fol = jnp.where(above, hi.foliar, fol)
    l_fol = jnp.where(above, fol_in - (fol - pools.foliar) / dt, l_fol)

    root = pools.root + (p_root - l_root) * dt
    root, l_root = _clip(root, pools.root, floor(pools.root, p_root), hi.root, p_root, l_root, dt)

    wood = pools.wood + (p_wood - l_wood) * dt
    wood, l_wood = _clip(wood, pools.wood, floor(pools.wood, p_wood), hi.wood, p_wood, l_wood, dt)

    lit_in = l_fol + l_root
    lit = pools.litter + (lit_in - rh_lit - d_lit) * dt
    lo = floor(pools.litter, lit_in)
    below = lit < lo
    lit = jnp.where(below, lo, lit)
    d_lit = jnp.where(below, lit_in - rh_lit - (lit - pools.litter) / dt, d_lit)
    neg_d = d_lit < 0.0
    d_lit = jnp.where(neg_d, 0.0, d_lit)
    rh_lit = jnp.where(neg_d, lit_in - (lit - pools.litter) / dt, rh_lit)
    above = lit > hi.litter
    lit = jnp.where(above, hi.litter, lit)
    d_lit = jnp.where(above, lit_in - rh_lit - (lit - pools.litter) / dt, d_lit)

    som_in = d_lit + l_wood
    som = pools.som + (som_in - rh_som) * dt
    som, rh_som = _clip(som, pools.som, floor(pools.som, som_in), hi.som, som_in, rh_som, dt)

    new = CarbonPools(lab, fol, root, wood, lit, som)
    fluxes = CarbonFluxes(
        respiration_auto=r_a,
        leaf_production=p_fol,
        labile_production=p_lab,
        root_production=p_root,
        wood_production=p_wood,
        labile_release=r_lab,
        leaf_litter=l_fol,
        wood_litter=l_wood,
        root_litter=l_root,
        respiration_hetero_litter=rh_lit,
        respiration_hetero_som=rh_som,
        litter_to_som=d_lit,
    )
    return new, fluxes
