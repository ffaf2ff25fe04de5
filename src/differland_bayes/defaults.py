"""The embedded default site: a synthetic temperate forest generated in code.

The default site lets every command run without data: a mid-latitude (45 N) climate
with seasonal cycles of temperature, radiation, humidity and precipitation, a rising CO2
record and small seeded day-to-day noise, plus a parameter vector that gives a
deciduous-like forest (leaf onset in spring, leaf fall in autumn). It is deterministic
for a given ``seed``; it is a demonstration and test fixture, not an observed site.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import xarray as xr

from .process.base import AbstractDalec
from .process.registry import MODELS

__all__ = [
    "DEFAULT_LATITUDE",
    "DEFAULT_START",
    "default_forcing_dataset",
    "default_theta",
    "default_theta_overrides",
]

log = logging.getLogger(__name__)

DEFAULT_LATITUDE = 45.0  #: latitude of the default site, degrees north
DEFAULT_START = "2001-01-01"  #: first day of the default forcing

DAYS_PER_YEAR = 365.25  #: mean year length used by the seasonal cycles, d

# Seasonal climate of the default site (a humid temperate forest).
T_MEAN_ANNUAL = 10.0  #: annual mean air temperature, degC
T_AMPLITUDE = 12.0  #: half the July-January difference of mean temperature, degC
T_COLDEST_DOY = 15.0  #: day of year of the coldest day, d
DTR_MEAN = 10.0  #: mean diurnal temperature range (t_max - t_min), degC
DTR_AMPLITUDE = 2.0  #: seasonal half-range of the diurnal temperature range, degC
DTR_MIN = 2.0  #: smallest diurnal temperature range allowed, degC
T_NOISE_SD = 2.5  #: standard deviation of day-to-day temperature anomalies, degC
T_NOISE_MEMORY = 0.7  #: lag-one autocorrelation of the daily temperature anomalies, 1
SOLSTICE_DOY = 172.0  #: day of year of the June solstice, d
SOLAR_CONSTANT = 118.1  #: solar constant, MJ m-2 d-1 (1367 W m-2)
TRANSMISSIVITY = 0.5  #: mean atmospheric transmissivity for shortwave radiation, 1
CLOUD_NOISE_SD = 0.12  #: standard deviation of daily transmissivity anomalies, 1
PRECIP_MEAN = 2.7  #: mean precipitation, mm d-1 (about 1000 mm yr-1)
PRECIP_SEASONALITY = 0.25  #: relative amplitude of the summer precipitation maximum, 1
WET_DAY_PROBABILITY = 0.4  #: chance of rain on a day, 1
RAIN_SHAPE = 0.8  #: shape of the gamma distribution of wet-day amounts, 1
CO2_START = 370.0  #: CO2 at the start of 2001, ppm
CO2_GROWTH = 2.0  #: CO2 growth rate, ppm yr-1
CO2_SEASONAL_AMPLITUDE = 3.0  #: half-range of the CO2 seasonal cycle, ppm
CO2_PEAK_DOY = 135.0  #: day of year of the CO2 maximum, d
CO2_NOISE_SD = 0.3  #: standard deviation of daily CO2 noise, ppm
VPD_HUMIDITY = 0.6  #: fraction of the daytime-minus-nighttime vapour-pressure gap, 1

_DAILY_MODELS = ("dalec990",)

#: physical values that make the default site a plausible deciduous temperate forest;
#: every other entry is the table's z = 0 value (geometric mean of the bounds)
_OVERRIDES: dict[str, dict[str, float]] = {
    "dalec993": {
        "f_gpp": 0.45,
        "f_fol": 0.15,
        "f_root": 0.3,
        "flab": 0.1,
        "leaf_lifespan": 1.05,
        "lab_lifespan": 1.2,
        "tor_wood": 5e-5,
        "tor_root": 1e-3,
        "tor_litter": 3e-3,
        "tor_som": 3e-5,
        "Q10": 0.07,
        "canopy_efficiency": 20.0,
        "LCMA": 40.0,
        "uWUE": 10.0,
        "boese_r": 0.05,
        "runoff_focal_point": 3000.0,
        "field_capacity": 150.0,
        "wilting_point_frac": 0.2,
        "clab_release_period": 40.0,
        "leaf_fall_period": 50.0,
        "Bday": 490.0,
        "Fday": 640.0,
        "Clab": 60.0,
        "Cfol": 10.0,
        "Croot": 350.0,
        "Cwood": 5000.0,
        "Clitter": 250.0,
        "Csom": 10000.0,
        "initial_water": 200.0,
    },
    "dalec990": {
        "f_gpp": 0.45,
        "f_fol": 0.15,
        "f_root": 0.3,
        "flab": 0.1,
        "leaf_lifespan": 1.05,
        "lab_lifespan": 1.2,
        "tor_wood": 5e-5,
        "tor_root": 1e-3,
        "tor_litter": 3e-3,
        "tor_som": 3e-5,
        "Q10": 0.07,
        "canopy_efficiency": 20.0,
        "LCMA": 40.0,
        "uWUE": 10.0,
        "boese_r": 0.05,
        "PAW_Qmax": 5e4,
        "PUW_Qmax": 1e4,
        "h2o_xfer": 0.3,
        "field_capacity": 150.0,
        "wilting_point_frac": 0.2,
        "clab_release_period": 40.0,
        "leaf_fall_period": 50.0,
        "Bday": 490.0,
        "Fday": 640.0,
        "Clab": 60.0,
        "Cfol": 10.0,
        "Croot": 350.0,
        "Cwood": 5000.0,
        "Clitter": 250.0,
        "Csom": 10000.0,
        "initial_PAW": 200.0,
        "initial_PUW": 100.0,
    },
}


def _saturation_vapour_pressure(t: np.ndarray) -> np.ndarray:
    """Saturation vapour pressure over water (Tetens), hPa, from temperature in degC."""
    return 6.1078 * np.exp(17.27 * t / (t + 237.3))


def _top_of_atmosphere_radiation(lat_deg: float, doy: np.ndarray) -> np.ndarray:
    """Daily extraterrestrial shortwave radiation, MJ m-2 d-1 (FAO-56 eq. 21-25)."""
    phi = np.deg2rad(lat_deg)
    dr = 1.0 + 0.033 * np.cos(2.0 * np.pi * doy / 365.0)
    decl = 0.409 * np.sin(2.0 * np.pi * doy / 365.0 - 1.39)
    ws = np.arccos(np.clip(-np.tan(phi) * np.tan(decl), -1.0, 1.0))
    return (
        SOLAR_CONSTANT
        / np.pi
        * dr
        * (ws * np.sin(phi) * np.sin(decl) + np.cos(phi) * np.cos(decl) * np.sin(ws))
    )


def _ar1(rng: np.random.Generator, n: int, sd: float, memory: float) -> np.ndarray:
    """Stationary AR(1) series with standard deviation ``sd`` and lag-one correlation."""
    innovations = rng.normal(0.0, sd * np.sqrt(1.0 - memory**2), n)
    out = np.empty(n)
    out[0] = rng.normal(0.0, sd)
    for i in range(1, n):
        out[i] = memory * out[i - 1] + innovations[i]
    return out


def _daily_climate(time: pd.DatetimeIndex, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Daily forcing of the default site on ``time`` (canonical units)."""
    n = len(time)
    doy = np.asarray(time.day_of_year, float)
    phase = 2.0 * np.pi * (doy - T_COLDEST_DOY) / DAYS_PER_YEAR
    seasonal = -np.cos(phase)  # -1 in mid-January, +1 in mid-July
    t_mean = T_MEAN_ANNUAL + T_AMPLITUDE * seasonal + _ar1(rng, n, T_NOISE_SD, T_NOISE_MEMORY)
    dtr = np.maximum(DTR_MEAN + DTR_AMPLITUDE * seasonal + rng.normal(0.0, 1.0, n), DTR_MIN)
    t_min = t_mean - 0.5 * dtr
    t_max = t_mean + 0.5 * dtr

    transmissivity = np.clip(TRANSMISSIVITY + rng.normal(0.0, CLOUD_NOISE_SD, n), 0.15, 0.75)
    swrad = transmissivity * _top_of_atmosphere_radiation(DEFAULT_LATITUDE, doy)

    # Daytime VPD: part of the gap between saturation at t_max and at t_min (dew point).
    vpd = VPD_HUMIDITY * (_saturation_vapour_pressure(t_max) - _saturation_vapour_pressure(t_min))

    summer = 1.0 + PRECIP_SEASONALITY * np.cos(2.0 * np.pi * (doy - SOLSTICE_DOY) / DAYS_PER_YEAR)
    wet = rng.random(n) < WET_DAY_PROBABILITY
    wet_mean = PRECIP_MEAN * summer / WET_DAY_PROBABILITY
    precip = np.where(wet, rng.gamma(RAIN_SHAPE, wet_mean / RAIN_SHAPE), 0.0)

    years = np.asarray((time - pd.Timestamp(DEFAULT_START)).days, float) / DAYS_PER_YEAR
    co2 = (
        CO2_START
        + CO2_GROWTH * years
        + CO2_SEASONAL_AMPLITUDE * np.cos(2.0 * np.pi * (doy - CO2_PEAK_DOY) / DAYS_PER_YEAR)
        + rng.normal(0.0, CO2_NOISE_SD, n)
    )
    return {
        "t_min": t_min,
        "t_max": t_max,
        "swrad": swrad,
        "co2": co2,
        "vpd": vpd,
        "precip": precip,
    }


_VARIABLE_ATTRS: dict[str, dict[str, str]] = {
    "t_min": {"units": "degC", "long_name": "daily minimum air temperature"},
    "t_max": {"units": "degC", "long_name": "daily maximum air temperature"},
    "swrad": {"units": "MJ m-2 d-1", "long_name": "shortwave downward radiation"},
    "co2": {"units": "ppm", "long_name": "atmospheric CO2 mole fraction"},
    "vpd": {"units": "hPa", "long_name": "vapour pressure deficit"},
    "precip": {"units": "mm d-1", "long_name": "precipitation"},
}


def _model_name(model: AbstractDalec | str) -> str:
    name = model if isinstance(model, str) else model.name
    if name not in MODELS:
        raise KeyError(f"unknown process model {name!r}; available: {sorted(MODELS)}")
    return name


def default_forcing_dataset(
    model_name: str = "dalec993", *, years: int = 10, seed: int = 0
) -> xr.Dataset:
    """Build the forcing of the embedded default site (synthetic temperate forest, 45 N).

    Parameters
    ----------
    model_name : {"dalec993", "dalec990"}
        Decides the time step: calendar months (time stamped at month starts, monthly
        means of the daily weather) for the monthly ``dalec993``, days for ``dalec990``.
    years : int
        Number of calendar years from 2001-01-01.
    seed : int
        Seed of the weather noise; the same seed gives the same dataset.

    Returns
    -------
    xarray.Dataset
        Variables ``t_min``, ``t_max`` (degC), ``swrad`` (MJ m-2 d-1), ``co2`` (ppm),
        ``vpd`` (hPa) and ``precip`` (mm d-1) on ``time``, each with ``units`` and
        ``long_name``; scalar ``lat`` coordinate (degrees_north).
    """
    name = _model_name(model_name)
    if int(years) < 1:
        raise ValueError(f"years must be a positive integer, found {years!r}")
    start = pd.Timestamp(DEFAULT_START)
    time = pd.date_range(start, start + pd.DateOffset(years=int(years)), freq="D", inclusive="left")
    data = _daily_climate(time, np.random.default_rng(seed))
    ds = xr.Dataset(
        {k: ("time", v, dict(_VARIABLE_ATTRS[k])) for k, v in data.items()},
        coords={"time": ("time", time)},
    )
    if name not in _DAILY_MODELS:
        ds = ds.resample(time="MS").mean(keep_attrs=True)
        for k in data:
            ds[k].attrs = dict(_VARIABLE_ATTRS[k])
    ds = ds.assign_coords(
        lat=((), DEFAULT_LATITUDE, {"units": "degrees_north", "long_name": "latitude"})
    )
    ds["time"].attrs["long_name"] = "start of the step"
    ds.attrs.update(
        title="differland_bayes default site: synthetic temperate forest",
        source="generated by differland_bayes.defaults.default_forcing_dataset",
        site="default",
        seed=int(seed),
        step="daily" if name in _DAILY_MODELS else "monthly",
    )
    log.debug("built the default %s forcing: %d steps", ds.attrs["step"], ds.sizes["time"])
    return ds


def default_theta_overrides(model: AbstractDalec | str) -> dict[str, float]:
    """Return the entries of :func:`default_theta` that differ from the z = 0 values.

    Parameters
    ----------
    model : AbstractDalec or str
        Process model or its name.

    Returns
    -------
    dict
        ``{parameter_name: physical_value}`` in the table's units.
    """
    return dict(_OVERRIDES[_model_name(model)])


def default_theta(model: AbstractDalec | str) -> np.ndarray:
    """Physical parameter vector of the default site (parameters, then initial pools).

    Parameters
    ----------
    model : AbstractDalec or str
        Process model or its name; the vector follows ``model.table``.

    Returns
    -------
    numpy.ndarray
        Float64 vector of length ``len(model.table)`` in the table's units: the z = 0
        values (geometric means of the bounds) with the overrides of
        :func:`default_theta_overrides` (leaf onset in spring and fall in autumn at
        45 N, wood 5000 and SOM 10000 gC m-2, moist soil).
    """
    table = MODELS[_model_name(model)].table
    theta = table.default.copy()
    for name, value in default_theta_overrides(model).items():
        theta[table.names.index(name)] = value
    table.check_physical(theta, what="default parameters")
    return theta
