"""Build model forcing from an :class:`xarray.Dataset` with named, unit-tagged variables.

The dataset has a ``time`` coordinate (datetime64; daily or monthly steps), an optional
``site`` dimension, a latitude (``lat`` coordinate or variable, per site) and the
variables below, each with a ``units`` attribute. Known alternative units are converted
(K to degC, W m-2 to MJ m-2 d-1, kPa to hPa, ...); anything else is an error. All
problems are collected and reported together before any computation starts.

=============  ==================  =========================================
variable       canonical units     meaning
=============  ==================  =========================================
t_min          degC                daily minimum air temperature
t_max          degC                daily maximum air temperature
swrad          MJ m-2 d-1          shortwave downward radiation
co2            ppm                 atmospheric CO2
vpd            hPa                 vapour pressure deficit
precip         mm d-1              precipitation
burned_area    1                   burned fraction per step (optional, 0)
=============  ==================  =========================================
"""

from __future__ import annotations

import logging
import math
from typing import Any, Literal

import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr

from .process.base import AbstractDalec
from .units import UnitError, convert

__all__ = [
    "FORCING_VARIABLES",
    "ForcingError",
    "build_forcing",
    "monthly_means",
    "published_train_mask",
]

log = logging.getLogger(__name__)

#: canonical forcing variables: name -> (quantity, required, description)
FORCING_VARIABLES: dict[str, tuple[str, bool, str]] = {
    "t_min": ("temperature", True, "daily minimum air temperature"),
    "t_max": ("temperature", True, "daily maximum air temperature"),
    "swrad": ("radiation", True, "shortwave downward radiation"),
    "co2": ("co2", True, "atmospheric CO2 mole fraction"),
    "vpd": ("vpd", True, "vapour pressure deficit"),
    "precip": ("precipitation", True, "precipitation"),
    "burned_area": ("fraction", False, "burned fraction of the area during the step"),
}

#: phenology clock epoch of each model (published conventions)
EPOCHS = {"dalec993": "2000-01-01", "dalec990": "2001-01-01"}
PUBLISHED_MONTH_LENGTH = 30.0  #: d, the published global model's fixed step


class ForcingError(ValueError):
    """The dataset cannot be turned into forcing; the message lists every problem."""


def monthly_means(ds: xr.Dataset) -> xr.Dataset:
    """Aggregate a daily dataset to calendar-month means (time stamped at month start).

    Attributes (``units`` included) are kept; a month mean of a rate keeps its unit.
    """
    out = ds.resample(time="MS").mean(keep_attrs=True)
    for name in ds.data_vars:
        out[name].attrs = dict(ds[name].attrs)
    return out


def published_train_mask(time: pd.DatetimeIndex) -> np.ndarray:
    """Training days of DifferLand v1.0: the first ceil(n_years/2) calendar years.

    ``n_years = round(n_days / 365.25)`` (spec §5.3).
    """
    n_years = round(len(time) / 365.25)
    first = time[0].year
    return np.asarray(time.year < first + math.ceil(n_years / 2))


def _step_kind(time: pd.DatetimeIndex) -> str:
    if len(time) < 2:
        raise ForcingError("time: need at least 2 steps to infer the step length")
    d = np.diff(time.values).astype("timedelta64[s]").astype(float) / 86400.0
    if np.all(d == 1.0):
        return "daily"
    if np.all((d >= 28) & (d <= 31)) and np.all(np.diff(time.year * 12 + time.month) == 1):
        return "monthly"
    raise ForcingError(
        "time: steps must be daily (1 d) or consecutive calendar months; found step "
        f"lengths from {d.min():g} to {d.max():g} d"
    )


def _time_index(ds: xr.Dataset) -> pd.DatetimeIndex:
    if "time" not in ds.coords:
        raise ForcingError("dataset has no 'time' coordinate")
    t = ds["time"].values
    if not np.issubdtype(t.dtype, np.datetime64):
        raise ForcingError(
            f"time: expected datetime64 values (decode CF times), found dtype {t.dtype}"
        )
    idx = pd.DatetimeIndex(t)
    if not idx.is_monotonic_increasing or idx.has_duplicates:
        raise ForcingError("time: values must be strictly increasing")
    return idx


def _latitude(ds: xr.Dataset, problems: list[str]) -> xr.DataArray | None:
    for name in ("lat", "latitude", "LAT"):
        if name in ds.variables:
            lat = ds[name]
            if "time" in lat.dims:
                problems.append(f"{name}: latitude must not vary with time")
                return None
            units = lat.attrs.get("units", "degrees_north")
            try:
                values = convert(np.asarray(lat.values, float), units, "latitude", variable=name)
            except UnitError as e:
                problems.append(str(e))
                return None
            if np.any(np.abs(values) > 90) or not np.all(np.isfinite(values)):
                problems.append(f"{name}: expected finite values in [-90, 90], found {values}")
            return lat.copy(data=values)
    problems.append("missing latitude: give a 'lat' coordinate or variable (degrees_north)")
    return None


def _where(da: xr.DataArray, bad: np.ndarray) -> str:
    """Describe the first few (site, time) positions where ``bad`` is True."""
    idx = np.argwhere(bad)
    parts = []
    for pos in idx[:3]:
        loc = []
        for dim, i in zip(da.dims, pos, strict=True):
            coord = da[dim].values[i] if dim in da.coords else i
            if dim == "time":
                coord = str(coord)[:10]
            loc.append(f"{dim}={coord}")
        parts.append("(" + ", ".join(loc) + ")")
    more = f" and {len(idx) - 3} more" if len(idx) > 3 else ""
    return ", ".join(parts) + more


def _read_variables(ds: xr.Dataset, problems: list[str]) -> dict[str, xr.DataArray]:
    out: dict[str, xr.DataArray] = {}
    for name, (quantity, required, _) in FORCING_VARIABLES.items():
        if name not in ds.data_vars:
            if required:
                problems.append(f"missing required variable {name!r} ({quantity})")
            continue
        da = ds[name]
        if "time" not in da.dims:
            problems.append(f"{name}: expected a 'time' dimension, found dims {da.dims}")
            continue
        try:
            values = convert(
                np.asarray(da.values, float), da.attrs.get("units"), quantity, variable=name
            )
        except UnitError as e:
            problems.append(str(e))
            continue
        da = da.copy(data=values)
        bad = ~np.isfinite(values)
        if bad.any():
            problems.append(
                f"{name}: expected finite values, found {int(bad.sum())} non-finite at "
                f"{_where(da, bad)}"
            )
        out[name] = da
    checks = [
        ("precip", lambda v: v < 0, "precipitation must be >= 0"),
        ("swrad", lambda v: v < 0, "radiation must be >= 0"),
        ("vpd", lambda v: v < 0, "VPD must be >= 0"),
        ("co2", lambda v: v <= 0, "CO2 must be > 0"),
        ("burned_area", lambda v: (v < 0) | (v > 1), "burned fraction must be in [0, 1]"),
    ]
    for name, test, what in checks:
        if name in out:
            bad = np.asarray(test(out[name].values)) & np.isfinite(out[name].values)
            if bad.any():
                problems.append(
                    f"{name}: {what}; found {int(bad.sum())} values at {_where(out[name], bad)}"
                )
    if "t_min" in out and "t_max" in out:
        tmin, tmax = xr.broadcast(out["t_min"], out["t_max"])
        bad = np.asarray(tmin.values > tmax.values)
        if bad.any():
            problems.append(f"t_min > t_max at {int(bad.sum())} steps: {_where(tmin, bad)}")
    return out


def build_forcing(
    ds: xr.Dataset,
    model: AbstractDalec,
    *,
    step_length: Literal["published", "calendar"] | None = None,
    longterm: Literal["all", "published_train"] | np.ndarray | None = None,
) -> Any:
    """Build ``model.Forcing`` from a dataset.

    Parameters
    ----------
    ds : xarray.Dataset
        Forcing variables (see module docstring) on ``time`` (and optionally ``site``).
    model : AbstractDalec
        The model the forcing is for; decides the fields, the phenology epoch and, through
        its mode, the default step length.
    step_length : {"published", "calendar"}, optional
        Monthly step length: ``"published"`` is the fixed 30 d of the published global
        model, ``"calendar"`` the true days in each month. Defaults to ``"published"`` in
        the faithful mode and ``"calendar"`` in the conserving mode. Daily steps are 1 d.
    longterm : {"all", "published_train"} or boolean array, optional
        Steps over which the long-term mean temperature and precipitation (and, for
        DALEC990, the standardisation of network inputs) are computed. Defaults to all
        steps for DALEC993 and to the published training years (first ceil(n_years/2)
        calendar years) for DALEC990.

    Returns
    -------
    NamedTuple
        ``model.Forcing`` with fields shaped ``(time,)`` or ``(site, time)``.

    Raises
    ------
    ForcingError
        Listing every missing variable, unknown unit, non-finite or impossible value.
    """
    problems: list[str] = []
    try:
        time = _time_index(ds)
        kind = _step_kind(time)
    except ForcingError as e:
        problems.append(str(e))
        time, kind = None, None
    lat = _latitude(ds, problems)
    data = _read_variables(ds, problems)
    if kind == "monthly" and model.name == "dalec990":
        log.warning("dalec990 is the daily site model; running it on monthly steps")
    if kind == "daily" and model.name == "dalec993":
        problems.append(
            "dalec993 is the monthly model but the data are daily: aggregate first with "
            "differland_bayes.forcing.monthly_means(ds)"
        )
    if problems:
        raise ForcingError(
            "cannot build forcing for " + model.name + ":\n  - " + "\n  - ".join(problems)
        )
    assert time is not None and lat is not None
    sites = ds.sizes.get("site")
    shape = (sites, len(time)) if sites else (len(time),)

    def arr(da: xr.DataArray) -> np.ndarray:
        dims = ("site", "time") if sites else ("time",)
        return np.broadcast_to(
            da.transpose(*[d for d in dims if d in da.dims]).values
            if set(da.dims) <= set(dims)
            else da.values,
            shape,
        )

    fields: dict[str, np.ndarray] = {k: arr(v) for k, v in data.items()}
    fields.setdefault("burned_area", np.zeros(shape))
    fields["lat"] = np.broadcast_to(np.asarray(lat.values, float)[..., None], shape)

    epoch = pd.Timestamp(EPOCHS[model.name])
    if kind == "monthly":
        start = time.to_period("M").to_timestamp()
        end = (time.to_period("M") + 1).to_timestamp()
        mid = start + (end - start) / 2
        stamp = mid.floor("D")
        days_in_month = np.asarray((end - start).days, float)
        step = step_length or ("published" if model.mode == "faithful" else "calendar")
        if step not in ("published", "calendar"):
            raise ForcingError(f"step_length must be 'published' or 'calendar', found {step!r}")
        dt = np.full(len(time), PUBLISHED_MONTH_LENGTH) if step == "published" else days_in_month
    else:
        stamp = time
        dt = np.ones(len(time))
    fields["days"] = np.broadcast_to(np.asarray((stamp - epoch).days, float), shape)
    fields["doy"] = np.broadcast_to(np.asarray(stamp.day_of_year, float), shape)
    fields["delta_t"] = np.broadcast_to(dt, shape)

    if longterm is None:
        longterm = "published_train" if model.name == "dalec990" else "all"
    if isinstance(longterm, str):
        if longterm == "all":
            sel = np.ones(len(time), bool)
        elif longterm == "published_train":
            sel = published_train_mask(time)
        else:
            raise ForcingError(
                f"longterm must be 'all', 'published_train' or a mask, found {longterm!r}"
            )
    else:
        sel = np.asarray(longterm, bool)
        if sel.shape != (len(time),) or not sel.any():
            raise ForcingError(f"longterm mask must have shape ({len(time)},) with a True entry")
    t_mean = 0.5 * (fields["t_min"] + fields["t_max"])
    fields["t_mean_longterm"] = np.broadcast_to(t_mean[..., sel].mean(-1, keepdims=True), shape)
    fields["precip_mean_longterm"] = np.broadcast_to(
        fields["precip"][..., sel].mean(-1, keepdims=True), shape
    )
    if "t_norm" in model.Forcing._fields:
        for out_name, x in (
            ("t_norm", t_mean),
            ("swrad_norm", fields["swrad"]),
            ("vpd_norm", fields["vpd"]),
            ("co2_norm", fields["co2"]),
        ):
            mu = x[..., sel].mean(-1, keepdims=True)
            sd = x[..., sel].std(-1, keepdims=True)
            fields[out_name] = np.broadcast_to((x - mu) / np.where(sd > 0, sd, 1.0), shape)
        doy = np.asarray(fields["doy"])[..., :]
        eoy = np.zeros(shape)
        eoy[..., :-1] = doy[..., 1:] == doy[..., :1]
        fields["end_of_year"] = eoy
    return model.Forcing(
        *(jnp.asarray(np.ascontiguousarray(fields[k])) for k in model.Forcing._fields)
    )
