"""DALEC993: the monthly global carbon-water model of DifferLand (spec §1.1-1.3)."""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import jax.numpy as jnp

from ...params import ParamTable
from ..base import AbstractDalec
from ..components.canopy import AbstractCanopy, AcmCanopy, CanopyDrivers
from ..components.carbon import CarbonPools, update_carbon
from ..components.fire import apply_fire
from ..components.hydrology import drainage_integrated, drainage_published
from ..components.turnover_drivers import TurnoverDrivers, turnover_drivers
from .structures import Dalec993Forcing, Dalec993Outputs, Dalec993Params, Dalec993Pools
from .table import DALEC993_TABLE

__all__ = ["WATER_MAX", "WATER_MIN", "Dalec993", "Dalec993Drivers"]

WATER_MIN = 1.0  #: lower clipping bound of the water bucket, mm
WATER_MAX = 1e4  #: upper clipping bound of the water bucket, mm
VIOLATION_FACTOR = 0.01  #: published scale of the water-violation penalty


class Dalec993Drivers(NamedTuple):
    """Per-step inputs of the sequential update, precomputed by :meth:`Dalec993.prepare`."""

    forcing: Dalec993Forcing
    canopy: CanopyDrivers
    turnover: TurnoverDrivers


class Dalec993(AbstractDalec):
    """Monthly DALEC993 with a single water bucket, fire, SIF and VOD operators.

    Attributes
    ----------
    canopy : AbstractCanopy
        GPP / ET strategy; ``AcmCanopy(LinearWaterStress())`` is the published
        ``default``, ``AcmCanopy(NoWaterStress())`` the published ``nothing``.
    mode : {"faithful", "conserving"}
        Numerics; see :class:`~differland_bayes.process.base.AbstractDalec`.

    Notes
    -----
    Faithful mode reproduces the published code including: the foliar minimum clip
    setting leaf litter to 1 gC m-2 d-1; runoff left negative (and GPP unchanged) when ET
    exceeds the available water; unguarded ``(1 - k) ** dt`` losses computed
    independently for litter respiration and decomposition; drainage ``W**2/Q`` per step
    whatever its length. The conserving mode fixes each of these so that carbon and water
    budgets close on every step; the step length is whatever the forcing gives.
    """

    canopy: AbstractCanopy = AcmCanopy()

    name: ClassVar[str] = "dalec993"
    table: ClassVar[ParamTable] = DALEC993_TABLE
    Forcing: ClassVar[type] = Dalec993Forcing
    Params: ClassVar[type] = Dalec993Params
    Pools: ClassVar[type] = Dalec993Pools
    Outputs: ClassVar[type] = Dalec993Outputs

    def prepare(self, params: Dalec993Params, forcing: Dalec993Forcing) -> Dalec993Drivers:
        """Compute everything that depends on forcing and parameters only."""
        return Dalec993Drivers(
            forcing=forcing,
            canopy=self.canopy.prepare(forcing),
            turnover=turnover_drivers(params, forcing, conserving=self.conserving),
        )

    def step(
        self, pools: Dalec993Pools, drv: Dalec993Drivers, params: Dalec993Params
    ) -> tuple[Dalec993Pools, Dalec993Outputs]:
        """Advance one month (spec §1.3 a-o)."""
        f = drv.forcing
        dt = f.delta_t
        lai = pools.foliar / params.LCMA
        canopy = self.canopy.fluxes(lai, pools.water, drv.canopy, params)
        gpp = canopy.gpp
        et = canopy.et

        carbon = CarbonPools(*pools[:6])
        carbon, cf = update_carbon(
            carbon, gpp, drv.turnover.rates, dt, params, conserving=self.conserving
        )

        # Water bucket (spec §1.3j-l).
        w0 = pools.water
        if self.conserving:
            runoff = drainage_integrated(w0, params.runoff_focal_point, dt)
        else:
            runoff = drainage_published(w0, params.runoff_focal_point, dt)
        w1 = w0 + (f.precip - et - runoff) * dt
        below = w1 < WATER_MIN
        w1 = jnp.where(below, WATER_MIN, w1)
        runoff = jnp.where(below, f.precip - et - (w1 - w0) / dt, runoff)
        violation = jnp.maximum(-VIOLATION_FACTOR * runoff, 0.0)
        short = runoff < 0.0
        et = jnp.where(short, f.precip - (w1 - w0) / dt, et)
        if self.conserving:
            runoff = jnp.where(short, 0.0, runoff)
        above = w1 > WATER_MAX
        w1 = jnp.where(above, WATER_MAX, w1)
        runoff = jnp.where(above, f.precip - et - (w1 - w0) / dt, runoff)

        carbon, fire = apply_fire(carbon, f.burned_area, dt, params)

        nee = -gpp + cf.respiration_auto + cf.respiration_hetero_litter + cf.respiration_hetero_som
        nbe = nee + fire.total_combust
        sif_beta = params.sif_beta_plus_three - 3.0
        sif = gpp / params.sif_alpha - sif_beta / params.sif_alpha
        vod = params.p_fol * carbon.foliar + params.p_wood * carbon.wood
        new = Dalec993Pools(*carbon, w1)
        out = Dalec993Outputs(
            lai=lai,
            gpp=gpp,
            ET=et,
            temperate=drv.turnover.temperate,
            lff=drv.turnover.lff,
            lrf=drv.turnover.lrf,
            runoff=runoff,
            labile_fire_combust=fire.combust.labile,
            foliar_fire_combust=fire.combust.foliar,
            root_fire_combust=fire.combust.root,
            wood_fire_combust=fire.combust.wood,
            litter_fire_combust=fire.combust.litter,
            som_fire_combust=fire.combust.som,
            labile_fire_transfer=fire.transfer.labile,
            foliar_fire_transfer=fire.transfer.foliar,
            root_fire_transfer=fire.transfer.root,
            wood_fire_transfer=fire.transfer.wood,
            litter_fire_transfer=fire.transfer.litter,
            total_fire_combust=fire.total_combust,
            nee=nee,
            nbe=nbe,
            next_labile_pool=new.labile,
            next_foliar_pool=new.foliar,
            next_root_pool=new.root,
            next_wood_pool=new.wood,
            next_litter_pool=new.litter,
            next_som_pool=new.som,
            next_water_pool=new.water,
            beta=canopy.beta,
            SIF=sif,
            violation=violation,
            vod=vod,
            **cf._asdict(),
        )
        return new, out
