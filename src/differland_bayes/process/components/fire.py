"""Fire: combustion and mortality transfer of burned biomass (spec §1.3m)."""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
from jax.typing import ArrayLike

from .carbon import CarbonPools

__all__ = ["FireFluxes", "apply_fire"]


class FireFluxes(NamedTuple):
    """Fire fluxes of one step, gC m-2 d-1."""

    combust: CarbonPools  #: carbon emitted by combustion, per pool
    transfer: CarbonPools  #: burned, non-combusted, non-surviving carbon moved to dead pools
    total_combust: jnp.ndarray  #: sum of combustion over the six pools


def apply_fire(
    pools: CarbonPools, burned_area: ArrayLike, delta_t: ArrayLike, params
) -> tuple[CarbonPools, FireFluxes]:
    """Burn a fraction of every pool and move mortality to litter and SOM.

    Parameters
    ----------
    pools : CarbonPools
        Pools after the carbon update, gC m-2.
    burned_area : array_like
        Burned fraction of the area during the step, 1.
    delta_t : array_like
        Step length, d.
    params : NamedTuple
        ``foliar_cf``, ``ligneous_cf``, ``dom_cf`` (combustion completeness, 1) and
        ``resilience`` (surviving fraction of non-combusted burned biomass, 1).

    Returns
    -------
    (CarbonPools, FireFluxes)
        Pools after fire (not clipped; fire removes at most the burned fraction) and the
        fluxes. SOM has no transfer (its ``transfer`` entry is zero).
    """
    lig, fol_cf, dom = params.ligneous_cf, params.foliar_cf, params.dom_cf
    cf = CarbonPools(lig, fol_cf, lig, lig, 0.5 * (lig + fol_cf), dom)
    ba_dt = burned_area / delta_t
    combust = CarbonPools(*(c * ba_dt * f for c, f in zip(pools, cf, strict=True)))
    survive = 1.0 - params.resilience
    transfer = CarbonPools(
        *(c * ba_dt * (1.0 - f) * survive for c, f in zip(pools[:5], cf[:5], strict=True)),
        jnp.zeros_like(pools.som * ba_dt),
    )
    dt = delta_t
    new = CarbonPools(
        labile=pools.labile - (combust.labile + transfer.labile) * dt,
        foliar=pools.foliar - (combust.foliar + transfer.foliar) * dt,
        root=pools.root - (combust.root + transfer.root) * dt,
        wood=pools.wood - (combust.wood + transfer.wood) * dt,
        litter=pools.litter
        + (transfer.labile + transfer.foliar + transfer.root - combust.litter - transfer.litter)
        * dt,
        som=pools.som + (transfer.wood + transfer.litter - combust.som) * dt,
    )
    total = (
        combust.labile + combust.foliar + combust.root + combust.wood + combust.litter + combust.som
    )
    return new, FireFluxes(combust=combust, transfer=transfer, total_combust=total)
