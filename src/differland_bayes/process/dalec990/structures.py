"""Named structures of DALEC990: forcing, parameters, pools and outputs."""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

__all__ = ["Dalec990Forcing", "Dalec990Outputs", "Dalec990Params", "Dalec990Pools"]

Array = jnp.ndarray


class Dalec990Forcing(NamedTuple):
    """Daily forcing of DALEC990, fields in the column order of the published ``met``."""

    days: Array  #: time stamp, days since 2001-01-01 (phenology clock), d
    t_min: Array  #: daily minimum air temperature, degC
    t_max: Array  #: daily maximum air temperature, degC
    swrad: Array  #: shortwave downward radiation, MJ m-2 d-1
    co2: Array  #: atmospheric CO2, ppm
    doy: Array  #: day of year, d
    burned_area: Array  #: burned fraction (0 at sites), 1
    vpd: Array  #: vapour pressure deficit, hPa
    precip: Array  #: precipitation, mm d-1
    lat: Array  #: latitude, degrees north
    delta_t: Array  #: step length (1), d
    t_mean_longterm: Array  #: mean of (Tmin + Tmax)/2 over the training period, degC
    precip_mean_longterm: Array  #: mean daily precipitation over the training period, mm d-1
    t_norm: Array  #: standardised mean temperature (network input), 1
    swrad_norm: Array  #: standardised shortwave radiation (network input), 1
    vpd_norm: Array  #: standardised VPD (network input), 1
    co2_norm: Array  #: standardised CO2 (network input), 1
    end_of_year: Array  #: 1 on the last day of each year but the last, else 0


class Dalec990Params(NamedTuple):
    """The 30 parameters of DALEC990 (units in ``DALEC990_TABLE``)."""

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
    Bday: Array
    flab: Array
    clab_release_period: Array
    Fday: Array
    leaf_fall_period: Array
    LCMA: Array
    uWUE: Array
    PAW_Qmax: Array
    field_capacity: Array
    wilting_point_frac: Array
    foliar_cf: Array
    ligneous_cf: Array
    dom_cf: Array
    resilience: Array
    lab_lifespan: Array
    moisture_factor: Array
    h2o_xfer: Array
    PUW_Qmax: Array
    boese_r: Array


class Dalec990Pools(NamedTuple):
    """State of DALEC990: six carbon pools (gC m-2), plant-available and -unavailable water (mm)."""

    labile: Array
    foliar: Array
    root: Array
    wood: Array
    litter: Array
    som: Array
    paw: Array
    puw: Array


class Dalec990Outputs(NamedTuple):
    """The 32 outputs of one step (fluxes in gC m-2 d-1 or mm d-1; pools at step end)."""

    lai: Array  #: leaf area index at the start of the step, m2 m-2
    gpp: Array  #: gross primary production, gC m-2 d-1
    ET: Array  #: evapotranspiration, mm d-1
    temperate: Array  #: temperature-moisture rate modifier, 1
    respiration_auto: Array  #: gC m-2 d-1
    leaf_production: Array  #: gC m-2 d-1
    labile_production: Array  #: gC m-2 d-1
    root_production: Array  #: gC m-2 d-1
    wood_production: Array  #: gC m-2 d-1
    lff: Array  #: leaf-fall pulse rate, d-1
    lrf: Array  #: labile-release pulse rate, d-1
    labile_release: Array  #: gC m-2 d-1
    leaf_litter: Array  #: gC m-2 d-1
    wood_litter: Array  #: gC m-2 d-1
    root_litter: Array  #: gC m-2 d-1
    respiration_hetero_litter: Array  #: gC m-2 d-1
    respiration_hetero_som: Array  #: gC m-2 d-1
    litter_to_som: Array  #: gC m-2 d-1
    q_paw: Array  #: drainage of plant-available water out of the system, mm d-1
    q_puw: Array  #: drainage of plant-unavailable water, mm d-1
    paw2puw: Array  #: transfer from plant-available to -unavailable water, mm d-1
    nee: Array  #: net ecosystem exchange (positive = source), gC m-2 d-1
    next_labile_pool: Array  #: gC m-2
    next_foliar_pool: Array  #: gC m-2
    next_root_pool: Array  #: gC m-2
    next_wood_pool: Array  #: gC m-2
    next_litter_pool: Array  #: gC m-2
    next_som_pool: Array  #: gC m-2
    next_paw_pool: Array  #: mm
    next_puw_pool: Array  #: mm
    beta: Array  #: water-stress factor, 1
    violation: Array  #: penalty where ET exceeded available water (0.01 x deficit), mm d-1
