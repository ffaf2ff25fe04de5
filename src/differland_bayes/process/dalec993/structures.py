"""Named structures of DALEC993: forcing, parameters, pools and outputs.

Each is a :class:`typing.NamedTuple` of JAX arrays, so it passes through ``jit``,
``vmap``, ``grad`` and ``lax.scan`` as it is. A leading ``time`` axis (and ``site`` axis
under ``vmap``) is allowed on every field.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

__all__ = ["Dalec993Forcing", "Dalec993Outputs", "Dalec993Params", "Dalec993Pools"]

Array = jnp.ndarray


class Dalec993Forcing(NamedTuple):
    """Monthly forcing of DALEC993, fields in the column order of the published ``met``."""

    days: Array  #: time stamp, days since 2000-01-01 (phenology clock), d
    t_min: Array  #: mean daily minimum air temperature, degC
    t_max: Array  #: mean daily maximum air temperature, degC
    swrad: Array  #: shortwave downward radiation, MJ m-2 d-1
    co2: Array  #: atmospheric CO2, ppm
    doy: Array  #: day of year for the ACM day length, d
    burned_area: Array  #: burned fraction during the step, 1
    vpd: Array  #: vapour pressure deficit, hPa
    precip: Array  #: precipitation, mm d-1
    lat: Array  #: latitude, degrees north
    delta_t: Array  #: step length, d
    t_mean_longterm: Array  #: mean annual temperature (static), degC
    precip_mean_longterm: Array  #: mean annual precipitation (static), mm d-1


class Dalec993Params(NamedTuple):
    """The 31 process and 2 phenology parameters (units in ``DALEC993_TABLE``)."""

    decomposition_rate: Array
    f_gpp: Array
    f_fol: Array
    f_root: Array
    leaf_lifespan: Array
    tor_wood: Array
    tor_root: Array
    tor_litter: Array
    tor_som: Array
    Q10: Array
    canopy_efficiency: Array
    flab: Array
    clab_release_period: Array
    leaf_fall_period: Array
    LCMA: Array
    IWUE: Array
    runoff_focal_point: Array
    field_capacity: Array
    foliar_cf: Array
    ligneous_cf: Array
    dom_cf: Array
    resilience: Array
    lab_lifespan: Array
    moisture_factor: Array
    uWUE: Array
    boese_r: Array
    wilting_point_frac: Array
    sif_alpha: Array
    sif_beta_plus_three: Array
    p_fol: Array
    p_wood: Array
    Bday: Array
    Fday: Array


class Dalec993Pools(NamedTuple):
    """State of DALEC993: six carbon pools (gC m-2) and one water bucket (mm)."""

    labile: Array
    foliar: Array
    root: Array
    wood: Array
    litter: Array
    som: Array
    water: Array


class Dalec993Outputs(NamedTuple):
    """The 44 outputs of one step (fluxes in gC m-2 d-1 or mm d-1; pools at step end)."""

    lai: Array  #: leaf area index at the start of the step, m2 m-2
    gpp: Array  #: gross primary production, gC m-2 d-1
    ET: Array  #: evapotranspiration, mm d-1
    temperate: Array  #: temperature-moisture rate modifier, 1
    respiration_auto: Array  #: autotrophic respiration, gC m-2 d-1
    leaf_production: Array  #: allocation to foliage, gC m-2 d-1
    labile_production: Array  #: allocation to labile, gC m-2 d-1
    root_production: Array  #: allocation to roots, gC m-2 d-1
    wood_production: Array  #: allocation to wood, gC m-2 d-1
    lff: Array  #: leaf-fall pulse rate, d-1
    lrf: Array  #: labile-release pulse rate, d-1
    labile_release: Array  #: labile to foliage, gC m-2 d-1
    leaf_litter: Array  #: foliage to litter, gC m-2 d-1
    wood_litter: Array  #: wood to SOM, gC m-2 d-1
    root_litter: Array  #: roots to litter, gC m-2 d-1
    respiration_hetero_litter: Array  #: litter respiration, gC m-2 d-1
    respiration_hetero_som: Array  #: SOM respiration, gC m-2 d-1
    litter_to_som: Array  #: decomposition, gC m-2 d-1
    runoff: Array  #: drainage, mm d-1 (negative when ET exceeded supply; faithful mode)
    labile_fire_combust: Array  #: gC m-2 d-1
    foliar_fire_combust: Array  #: gC m-2 d-1
    root_fire_combust: Array  #: gC m-2 d-1
    wood_fire_combust: Array  #: gC m-2 d-1
    litter_fire_combust: Array  #: gC m-2 d-1
    som_fire_combust: Array  #: gC m-2 d-1
    labile_fire_transfer: Array  #: gC m-2 d-1
    foliar_fire_transfer: Array  #: gC m-2 d-1
    root_fire_transfer: Array  #: gC m-2 d-1
    wood_fire_transfer: Array  #: gC m-2 d-1
    litter_fire_transfer: Array  #: gC m-2 d-1
    total_fire_combust: Array  #: fire carbon emissions, gC m-2 d-1
    nee: Array  #: net ecosystem exchange (positive = source, fire excluded), gC m-2 d-1
    nbe: Array  #: net biosphere exchange = NEE + fire, gC m-2 d-1
    next_labile_pool: Array  #: gC m-2
    next_foliar_pool: Array  #: gC m-2
    next_root_pool: Array  #: gC m-2
    next_wood_pool: Array  #: gC m-2
    next_litter_pool: Array  #: gC m-2
    next_som_pool: Array  #: gC m-2
    next_water_pool: Array  #: mm
    beta: Array  #: water-stress factor, 1
    SIF: Array  #: solar-induced fluorescence from the linear GPP-SIF operator, SIF units
    violation: Array  #: penalty where ET exceeded available water, mm d-1 (times 0.01)
    vod: Array  #: vegetation optical depth operator, 1
