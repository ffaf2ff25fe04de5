"""Synthetic sites: environments drawn from realistic ranges and a consistent climate.

A site is a latitude, a longitude, an elevation, a target mean annual temperature and
precipitation (from latitude, elevation and noise), a stand age and a vegetation class
(drawn with probabilities that follow the climate). Its forcing has seasonal cycles set
by the latitude (temperature amplitude growing with latitude, top-of-atmosphere
radiation, the seasons of the southern hemisphere half a year later), precipitation with
a summer or winter maximum, day-to-day (or month-to-month) weather noise and a global
CO2 record. Monthly steps are generated directly as monthly means (no daily weather).

Every draw goes through :class:`~differland_bayes.synthetic.rng.SiteRandom`, so a site's
environment and weather depend only on the seed and its index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .rng import SiteRandom

__all__ = [
    "FEATURES",
    "VEGETATION_CLASSES",
    "TimeAxis",
    "co2_record",
    "draw_environment",
    "generate_climate",
    "make_time_axis",
    "realised_climate",
]

DAYS_PER_YEAR = 365.25  #: d
HALF_YEAR = DAYS_PER_YEAR / 2.0  #: d

#: numeric environment predictors written to ``env``: name -> (units, long name)
FEATURES: dict[str, tuple[str, str]] = {
    "mat": ("degC", "mean annual air temperature, mean of (t_min + t_max) / 2"),
    "map": ("mm yr-1", "mean annual precipitation"),
    "elevation": ("m", "elevation above sea level"),
    "forest_age": ("yr", "stand age"),
    "lat": ("degrees_north", "latitude"),
}

#: IGBP vegetation classes of the synthetic sites
VEGETATION_CLASSES: tuple[str, ...] = ("ENF", "EBF", "DBF", "MF", "OSH", "SAV", "GRA", "CRO")
#: preference of each class: (intercept, slope on x_mat, slope on x_map), x standardised
_CLASS_SCORES = np.array(
    [
        [0.3, -1.2, 0.0],  # ENF: cold
        [-0.5, 1.5, 1.5],  # EBF: warm and wet
        [0.0, 0.0, 0.5],  # DBF
        [-0.3, -0.6, 0.3],  # MF
        [-0.5, 0.5, -1.5],  # OSH: dry
        [-0.5, 1.2, -0.3],  # SAV: warm, seasonally dry
        [0.2, 0.0, -1.0],  # GRA: dry
        [0.0, 0.3, 0.0],  # CRO
    ]
)

# Environment draws.
NORTH_FRACTION = 0.68  #: share of sites in the northern hemisphere, 1
MAX_LAT_NORTH = 70.0  #: degrees
MAX_LAT_SOUTH = 50.0  #: degrees
ELEVATION_MEDIAN = 300.0  #: m
ELEVATION_LOG_SD = 1.0  #: 1
ELEVATION_MAX = 4500.0  #: m
MAT_EQUATOR = 27.0  #: mean annual temperature up to 12 degrees latitude, degC
MAT_LAT_START = 12.0  #: degrees
MAT_LAT_SLOPE = 0.55  #: cooling per degree of latitude beyond MAT_LAT_START, degC
LAPSE_RATE = 6.5e-3  #: degC m-1
MAT_NOISE_SD = 2.0  #: degC
MAP_LOG_SD = 0.55  #: 1
MAP_RANGE = (80.0, 4500.0)  #: mm yr-1
AGE_MEDIAN = 60.0  #: yr
AGE_LOG_SD = 0.8  #: 1
AGE_RANGE = (5.0, 500.0)  #: yr

# Climate.
T_AMPLITUDE_BASE = 1.0  #: seasonal half-range of temperature at the equator, degC
T_AMPLITUDE_SLOPE = 0.3  #: growth of the half-range per degree of latitude, degC
COLDEST_DOY = 15.0  #: coldest day of year in the northern hemisphere, d
T_NOISE = {"monthly": (1.0, 0.3), "daily": (2.5, 0.7)}  #: (sd degC, lag-1 correlation)
DTR_BASE, DTR_DRY, DTR_SEASONAL, DTR_MIN = 7.0, 6.0, 1.5, 2.0  #: degC
DTR_NOISE = {"monthly": 0.7, "daily": 1.5}  #: degC
DRYNESS_MAP = 1500.0  #: precipitation above which a site counts as humid, mm yr-1
TAU_BASE, TAU_DRY, TAU_RANGE = 0.45, 0.2, (0.15, 0.8)  #: atmospheric transmissivity, 1
TAU_NOISE = {"monthly": 0.04, "daily": 0.12}  #: 1
SOLAR_CONSTANT = 118.1  #: MJ m-2 d-1 (1367 W m-2)
VPD_FACTOR = 0.7  #: 1
DEW_DEPRESSION_BASE, DEW_DEPRESSION_DRY = 1.0, 8.0  #: degC
SUMMER_DOY = 172.0  #: northern summer solstice, d
SUMMER_PEAK_FRACTION = 0.7  #: share of sites with a summer precipitation maximum, 1
PRECIP_SEASONALITY_MAX = 0.8  #: largest relative amplitude of the precipitation cycle, 1
PRECIP_LOG_SD = 0.45  #: month-to-month variability of precipitation, 1
WET_DAYS = (0.15, 0.4, 0.05, 0.6)  #: wet-day probability: base, humid gain, min, max
CO2_START_YEAR, CO2_START, CO2_GROWTH = 2001.0, 370.0, 2.0  #: yr, ppm, ppm yr-1
CO2_SEASONAL, CO2_PEAK_DOY = 3.0, 135.0  #: ppm, d


@dataclass(frozen=True)
class TimeAxis:
    """The time steps of a synthetic world.

    Attributes
    ----------
    time : pandas.DatetimeIndex
        Start of each step (first of the month, or each day).
    daily : bool
        Daily steps (else calendar months).
    doy : numpy.ndarray
        Day of year of the middle of each step, d.
    days : numpy.ndarray
        Calendar days in each step, d.
    year : numpy.ndarray
        Calendar year of each step.
    year_end : numpy.ndarray
        True on the last step of each calendar year.
    decimal_year : numpy.ndarray
        Middle of each step in years (e.g. 2001.04), yr.
    """

    time: pd.DatetimeIndex
    daily: bool
    doy: np.ndarray
    days: np.ndarray
    year: np.ndarray
    year_end: np.ndarray
    decimal_year: np.ndarray

    def __len__(self) -> int:
        return len(self.time)

    @property
    def step(self) -> str:
        """``"daily"`` or ``"monthly"``."""
        return "daily" if self.daily else "monthly"


def make_time_axis(start_year: int, years: int, *, daily: bool) -> TimeAxis:
    """Calendar years ``start_year .. start_year + years - 1`` in daily or monthly steps."""
    start = pd.Timestamp(year=int(start_year), month=1, day=1)
    end = pd.Timestamp(year=int(start_year) + int(years), month=1, day=1)
    time = pd.date_range(start, end, freq="D" if daily else "MS", inclusive="left")
    nxt = time[1:].append(pd.DatetimeIndex([end]))
    days = np.asarray((nxt - time).days, float)
    mid = time + pd.to_timedelta(days / 2.0, unit="D")
    year = np.asarray(time.year)
    year_end = np.append(year[1:] != year[:-1], True)
    doy = np.asarray(mid.day_of_year, float) - 1.0 + np.asarray(mid.hour, float) / 24.0
    decimal_year = np.asarray(mid.year, float) + doy / DAYS_PER_YEAR
    return TimeAxis(time, daily, doy, days, year, year_end, decimal_year)


def _standard_climate(mat: np.ndarray, map_: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (mat - 12.0) / 9.0, np.log(map_ / 900.0) / 0.7


def draw_environment(rand: SiteRandom, sites: np.ndarray) -> dict[str, np.ndarray]:
    """Draw the environment of sites ``sites`` (global indices).

    Returns
    -------
    dict
        Arrays of shape ``(len(sites),)``: ``lat`` (degrees_north), ``lon``
        (degrees_east), ``elevation`` (m), ``mat_target`` (degC), ``map_target``
        (mm yr-1), ``forest_age`` (yr), ``vegetation_class`` (str), and the climate
        shape parameters ``continentality`` (1), ``precip_seasonality`` (1) and
        ``precip_peak_doy`` (d).
    """
    u = rand.uniform("environment", sites, (16,))
    n = rand.normal("environment-normal", sites, (4,))
    north = u[:, 0] < NORTH_FRACTION
    max_lat = np.where(north, MAX_LAT_NORTH, MAX_LAT_SOUTH)
    abs_lat = np.degrees(np.arcsin(u[:, 1] * np.sin(np.radians(max_lat))))  # area weighted
    lat = np.where(north, abs_lat, -abs_lat)
    lon = -180.0 + 360.0 * u[:, 2]
    elevation = np.minimum(ELEVATION_MEDIAN * np.exp(ELEVATION_LOG_SD * n[:, 0]), ELEVATION_MAX)
    mat = (
        MAT_EQUATOR
        - MAT_LAT_SLOPE * np.maximum(abs_lat - MAT_LAT_START, 0.0)
        - LAPSE_RATE * elevation
        + MAT_NOISE_SD * n[:, 1]
    )
    wet_tropics = 1400.0 * np.exp(-((abs_lat / 10.0) ** 2))
    dry_subtropics = -300.0 * np.exp(-(((abs_lat - 25.0) / 7.0) ** 2))
    storm_tracks = 250.0 * np.exp(-(((abs_lat - 45.0) / 10.0) ** 2))
    map_ = (600.0 + wet_tropics + dry_subtropics + storm_tracks) * np.exp(MAP_LOG_SD * n[:, 2])
    map_ = np.clip(map_, *MAP_RANGE)
    age = np.clip(AGE_MEDIAN * np.exp(AGE_LOG_SD * n[:, 3]), *AGE_RANGE)

    x_mat, x_map = _standard_climate(mat, map_)
    scores = _CLASS_SCORES[:, 0] + np.outer(x_mat, _CLASS_SCORES[:, 1])
    scores += np.outer(x_map, _CLASS_SCORES[:, 2])
    gumbel = -np.log(-np.log(u[:, 3 : 3 + len(VEGETATION_CLASSES)]))
    vegetation = np.asarray(VEGETATION_CLASSES)[np.argmax(scores + gumbel, axis=1)]

    summer = np.where(north, SUMMER_DOY, SUMMER_DOY + HALF_YEAR)
    peak = np.where(u[:, 12] < SUMMER_PEAK_FRACTION, summer, summer + HALF_YEAR) % DAYS_PER_YEAR
    return {
        "lat": lat,
        "lon": lon,
        "elevation": elevation,
        "mat_target": mat,
        "map_target": map_,
        "forest_age": age,
        "vegetation_class": vegetation,
        "continentality": 0.7 + 0.6 * u[:, 13],
        "precip_seasonality": PRECIP_SEASONALITY_MAX * u[:, 14],
        "precip_peak_doy": peak,
    }


def _saturation_vapour_pressure(t: np.ndarray) -> np.ndarray:
    """Saturation vapour pressure over water (Tetens), hPa, from temperature in degC."""
    return 6.1078 * np.exp(17.27 * t / (t + 237.3))


def top_of_atmosphere_radiation(lat_deg: np.ndarray, doy: np.ndarray) -> np.ndarray:
    """Daily extraterrestrial shortwave radiation, MJ m-2 d-1 (FAO-56 eq. 21-25).

    ``lat_deg`` (degrees_north) and ``doy`` (d) broadcast against each other.
    """
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


def _ar1(innovations: np.ndarray, sd: float, memory: float) -> np.ndarray:
    """Stationary AR(1) series along the last axis from standard normal innovations."""
    out = np.empty_like(innovations)
    out[..., 0] = sd * innovations[..., 0]
    scale = sd * np.sqrt(1.0 - memory**2)
    for t in range(1, innovations.shape[-1]):
        out[..., t] = memory * out[..., t - 1] + scale * innovations[..., t]
    return out


def co2_record(axis: TimeAxis) -> np.ndarray:
    """Global CO2 of each step: linear growth and a seasonal cycle, ppm (shape ``(T,)``)."""
    return (
        CO2_START
        + CO2_GROWTH * (axis.decimal_year - CO2_START_YEAR)
        + CO2_SEASONAL * np.cos(2.0 * np.pi * (axis.doy - CO2_PEAK_DOY) / DAYS_PER_YEAR)
    )


def generate_climate(
    env: dict[str, np.ndarray], axis: TimeAxis, rand: SiteRandom, sites: np.ndarray
) -> dict[str, np.ndarray]:
    """Generate the forcing of sites with environments ``env`` on ``axis``.

    Returns
    -------
    dict
        ``t_min``, ``t_max`` (degC), ``swrad`` (MJ m-2 d-1), ``co2`` (ppm), ``vpd``
        (hPa), ``precip`` (mm d-1), each of shape ``(sites, time)``, float64.
    """
    kind = axis.step
    n_t = len(axis)
    noise = rand.normal("climate", sites, (4, n_t))
    col = lambda a: np.asarray(a, float)[:, None]  # noqa: E731
    lat = col(env["lat"])
    doy = axis.doy[None, :]
    coldest = np.where(lat >= 0.0, COLDEST_DOY, COLDEST_DOY + HALF_YEAR)
    seasonal = -np.cos(2.0 * np.pi * (doy - coldest) / DAYS_PER_YEAR)  # +1 in summer
    amplitude = col(env["continentality"]) * (T_AMPLITUDE_BASE + T_AMPLITUDE_SLOPE * np.abs(lat))
    sd, memory = T_NOISE[kind]
    t_mean = col(env["mat_target"]) + amplitude * seasonal + _ar1(noise[:, 0], sd, memory)

    dryness = np.clip(1.0 - col(env["map_target"]) / DRYNESS_MAP, 0.0, 1.0)
    dtr = DTR_BASE + DTR_DRY * dryness + DTR_SEASONAL * seasonal + DTR_NOISE[kind] * noise[:, 1]
    dtr = np.maximum(dtr, DTR_MIN)
    t_min = t_mean - 0.5 * dtr
    t_max = t_mean + 0.5 * dtr

    tau = np.clip(TAU_BASE + TAU_DRY * dryness + TAU_NOISE[kind] * noise[:, 2], *TAU_RANGE)
    swrad = tau * top_of_atmosphere_radiation(lat, doy)

    dew = t_min - (DEW_DEPRESSION_BASE + DEW_DEPRESSION_DRY * dryness)
    vpd = VPD_FACTOR * (_saturation_vapour_pressure(t_max) - _saturation_vapour_pressure(dew))

    cycle = np.cos(2.0 * np.pi * (doy - col(env["precip_peak_doy"])) / DAYS_PER_YEAR)
    mean = col(env["map_target"]) / DAYS_PER_YEAR * (1.0 + col(env["precip_seasonality"]) * cycle)
    if axis.daily:
        u = rand.uniform("climate-uniform", sites, (2, n_t))
        humid = np.minimum(col(env["map_target"]) / DRYNESS_MAP, 1.0)
        base, gain, lo, hi = WET_DAYS
        p_wet = np.clip(base + gain * humid, lo, hi)
        precip = np.where(u[:, 0] < p_wet, -np.log(u[:, 1]) * mean / p_wet, 0.0)
    else:
        precip = mean * np.exp(PRECIP_LOG_SD * noise[:, 3] - 0.5 * PRECIP_LOG_SD**2)

    co2 = np.broadcast_to(co2_record(axis), t_min.shape)
    return {
        "t_min": t_min,
        "t_max": t_max,
        "swrad": swrad,
        "co2": np.array(co2),
        "vpd": vpd,
        "precip": precip,
    }


def realised_climate(forcing: dict[str, np.ndarray], axis: TimeAxis) -> tuple[np.ndarray, ...]:
    """Mean annual temperature (degC) and precipitation (mm yr-1) of each site's forcing.

    Means over all steps weighted by the calendar days of each step; temperature is the
    mean of ``(t_min + t_max) / 2``.
    """
    w = axis.days / axis.days.sum()
    t_mean = 0.5 * (np.asarray(forcing["t_min"], float) + np.asarray(forcing["t_max"], float))
    mat = t_mean @ w
    map_ = (np.asarray(forcing["precip"], float) @ w) * DAYS_PER_YEAR
    return mat, map_
