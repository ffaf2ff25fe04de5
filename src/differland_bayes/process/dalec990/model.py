"""DALEC990: the daily site model of DifferLand v1.0 (spec §1.5)."""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import jax.numpy as jnp

from ...params import ParamTable
from ..base import AbstractDalec
from ..components.canopy import AbstractCanopy, AcmCanopy, CanopyDrivers
from ..components.carbon import CarbonPools, update_carbon
from ..components.hydrology import drainage_integrated, drainage_published
from ..components.turnover_drivers import TurnoverDrivers, turnover_drivers
from .structures import Dalec990Forcing, Dalec990Outputs, Dalec990Params, Dalec990Pools
from .table import DALEC990_TABLE

__all__ = ["Dalec990", "Dalec990Drivers"]

WATER_MIN = 1.0  #: lower clipping bound of PAW and PUW, mm
WATER_MAX = 1e4  #: upper clipping bound of PAW and PUW, mm
VIOLATION_FACTOR = 0.01  #: published scale of the water-violation penalty


class Dalec990Drivers(NamedTuple):
    """Per-step inputs of the sequential update, precomputed by :meth:`Dalec990.prepare`."""

    forcing: Dalec990Forcing
    canopy: CanopyDrivers
    turnover: TurnoverDrivers


class WaterFluxes(NamedTuple):
    """Adjusted water fluxes of one DALEC990 step, mm d-1."""

    et: jnp.ndarray
    q_paw: jnp.ndarray
    paw2puw: jnp.ndarray
    q_puw: jnp.ndarray
    violation: jnp.ndarray


class Dalec990(AbstractDalec):
    """Daily DALEC990 with plant-available (PAW) and -unavailable (PUW) water.

    Attributes
    ----------
    canopy : AbstractCanopy
        GPP / ET strategy acting on PAW; ``AcmCanopy(LinearWaterStress())`` is the
        published ``default``, ``AcmCanopy(NoWaterStress())`` the published ``baseline``.
    mode : {"faithful", "conserving"}
        Numerics. Faithful keeps the published PAW-clip fluxes (mis-parenthesised, not
        mass-conserving) and the PUW maximum clip that tests the minimum selector; the
        conserving mode rebalances both and integrates drainage exactly over the step.
    """

    canopy: AbstractCanopy = AcmCanopy()

    name: ClassVar[str] = "dalec990"
    table: ClassVar[ParamTable] = DALEC990_TABLE
    Forcing: ClassVar[type] = Dalec990Forcing
    Params: ClassVar[type] = Dalec990Params
    Pools: ClassVar[type] = Dalec990Pools
    Outputs: ClassVar[type] = Dalec990Outputs

    def prepare(self, params: Dalec990Params, forcing: Dalec990Forcing) -> Dalec990Drivers:
        """Compute everything that depends on forcing and parameters only."""
        return Dalec990Drivers(
            forcing=forcing,
            canopy=self.canopy.prepare(forcing),
            turnover=turnover_drivers(params, forcing, conserving=self.conserving),
        )

    def _water(self, pools: Dalec990Pools, et, precip, dt, params) -> tuple:
        """Two-bucket hydrology with clipping (spec §1.5)."""
        x = params.h2o_xfer
        paw, puw = pools.paw, pools.puw
        drain = (drainage_integrated if self.conserving else drainage_published)(
            paw, params.PAW_Qmax, dt
        )
        q_paw, paw2puw = drain * (1.0 - x), drain * x
        paw1 = paw + (precip - et - q_paw - paw2puw) * dt

        below = paw1 < WATER_MIN
        paw1 = jnp.where(below, WATER_MIN, paw1)
        if self.conserving:
            drain_b = precip - et - (paw1 - paw) / dt
            q_paw = jnp.where(below, drain_b * (1.0 - x), q_paw)
            paw2puw = jnp.where(below, drain_b * x, paw2puw)
        else:  # published: not mass-conserving
            q_paw = jnp.where(below, precip - et - (paw1 - paw) / dt * (1.0 - x), q_paw)
            paw2puw = jnp.where(below, precip - et - (paw1 - paw) / dt * x, paw2puw)
        short = q_paw < 0.0
        violation = jnp.where(short, VIOLATION_FACTOR * jnp.abs(q_paw), 0.0)
        et = jnp.where(short, precip - (paw1 - paw) / dt, et)
        q_paw = jnp.where(short, 0.0, q_paw)
        paw2puw = jnp.where(short, 0.0, paw2puw)

        above = paw1 > WATER_MAX
        paw1 = jnp.where(above, WATER_MAX, paw1)
        if self.conserving:
            drain_a = precip - et - (paw1 - paw) / dt
            q_paw = jnp.where(above, drain_a * (1.0 - x), q_paw)
            paw2puw = jnp.where(above, drain_a * x, paw2puw)
        else:
            q_paw = jnp.where(above, precip - et - (paw1 - paw) / dt * (1.0 - x), q_paw)
            paw2puw = jnp.where(above, precip - et - (paw1 - paw) / dt * x, paw2puw)

        q_puw = (drainage_integrated if self.conserving else drainage_published)(
            puw, params.PUW_Qmax, dt
        )
        puw1 = puw + (paw2puw - q_puw) * dt
        below = puw1 < WATER_MIN
        puw1 = jnp.where(below, WATER_MIN, puw1)
        q_puw = jnp.where(below, paw2puw - (puw1 - puw) / dt, q_puw)
        above = puw1 > WATER_MAX
        puw1 = jnp.where(above, WATER_MAX, puw1)
        # Published bug: the maximum clip rebalances under the *minimum* selector.
        q_puw = jnp.where(above if self.conserving else below, paw2puw - (puw1 - puw) / dt, q_puw)
        return paw1, puw1, WaterFluxes(et, q_paw, paw2puw, q_puw, violation)

    def step(
        self, pools: Dalec990Pools, drv: Dalec990Drivers, params: Dalec990Params
    ) -> tuple[Dalec990Pools, Dalec990Outputs]:
        """Advance one day."""
        f = drv.forcing
        dt = f.delta_t
        lai = pools.foliar / params.LCMA
        canopy = self.canopy.fluxes(lai, pools.paw, drv.canopy, params)
        gpp = canopy.gpp
        carbon, cf = update_carbon(
            CarbonPools(*pools[:6]), gpp, drv.turnover.rates, dt, params, conserving=self.conserving
        )
        paw1, puw1, w = self._water(pools, canopy.et, f.precip, dt, params)
        nee = -gpp + cf.respiration_auto + cf.respiration_hetero_litter + cf.respiration_hetero_som
        new = Dalec990Pools(*carbon, paw1, puw1)
        out = Dalec990Outputs(
            lai=lai,
            gpp=gpp,
            ET=w.et,
            temperate=drv.turnover.temperate,
            lff=drv.turnover.lff,
            lrf=drv.turnover.lrf,
            q_paw=w.q_paw,
            q_puw=w.q_puw,
            paw2puw=w.paw2puw,
            nee=nee,
            next_labile_pool=new.labile,
            next_foliar_pool=new.foliar,
            next_root_pool=new.root,
            next_wood_pool=new.wood,
            next_litter_pool=new.litter,
            next_som_pool=new.som,
            next_paw_pool=new.paw,
            next_puw_pool=new.puw,
            beta=canopy.beta,
            violation=w.violation,
            **cf._asdict(),
        )
        return new, out
