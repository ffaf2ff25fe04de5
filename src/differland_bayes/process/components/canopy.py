"""Canopy fluxes: GPP and evapotranspiration (spec §1.3b-d).

A canopy strategy turns the start-of-step LAI and plant-available water into GPP, ET and
the water-stress factor. The default is the ACM GPP times a water-stress factor with the
underlying-water-use-efficiency ET of Boese et al.; a hybrid variant that predicts GPP and
ET with a network (spec §1.4 ``nn_whole``) is another subclass, and the carbon and water
bookkeeping of the models does not change.
"""

from __future__ import annotations

import abc
from typing import NamedTuple

import equinox as eqx
import jax.numpy as jnp
from jax.typing import ArrayLike

from .acm import AcmDrivers, acm_drivers, acm_gpp
from .water_stress import AbstractWaterStress, LinearWaterStress

__all__ = ["AbstractCanopy", "AcmCanopy", "CanopyDrivers", "CanopyFluxes"]


class CanopyFluxes(NamedTuple):
    """Canopy fluxes of one step."""

    gpp: jnp.ndarray  #: gross primary production, gC m-2 d-1
    et: jnp.ndarray  #: evapotranspiration, mm d-1
    beta: jnp.ndarray  #: water-stress factor applied to GPP, 1


class CanopyDrivers(NamedTuple):
    """Forcing-only canopy terms, precomputed over the whole series."""

    acm: AcmDrivers
    sqrt_vpd: jnp.ndarray  #: square root of VPD, hPa^0.5
    swrad: jnp.ndarray  #: shortwave radiation, MJ m-2 d-1


class AbstractCanopy(eqx.Module):
    """Interface of a canopy strategy: ``prepare`` once per series, ``fluxes`` per step."""

    @abc.abstractmethod
    def prepare(self, forcing) -> CanopyDrivers:
        """Forcing-only terms for a whole series (fields of ``forcing`` have a time axis)."""

    @abc.abstractmethod
    def fluxes(self, lai: ArrayLike, water: ArrayLike, drv: CanopyDrivers, params) -> CanopyFluxes:
        """GPP, ET and beta of one step from LAI (m2 m-2) and plant-available water (mm)."""


class AcmCanopy(AbstractCanopy):
    """ACM GPP times a water-stress factor; uWUE + radiation ("Boese") ET.

    ``GPP = beta(W) * GPP_ACM(LAI, ce)`` and
    ``ET = GPP * sqrt(VPD) / uWUE + SW * boese_r`` (mm d-1).

    Attributes
    ----------
    water_stress : AbstractWaterStress
        Strategy for ``beta`` (default: the published linear ramp).
    """

    water_stress: AbstractWaterStress = LinearWaterStress()

    def prepare(self, forcing) -> CanopyDrivers:  # noqa: D102
        acm = acm_drivers(
            forcing.t_min, forcing.t_max, forcing.swrad, forcing.co2, forcing.doy, forcing.lat
        )
        return CanopyDrivers(acm=acm, sqrt_vpd=jnp.sqrt(forcing.vpd), swrad=forcing.swrad)

    def fluxes(self, lai, water, drv: CanopyDrivers, params) -> CanopyFluxes:  # noqa: D102
        beta = self.water_stress.beta(water, params)
        gpp = beta * acm_gpp(lai, params.canopy_efficiency, drv.acm)
        et = gpp * drv.sqrt_vpd / params.uWUE + drv.swrad * params.boese_r
        return CanopyFluxes(gpp=gpp, et=et, beta=beta)
