"""Helpers shared by the readers: time axes, splits, masks, monthly aggregation, selection.

Private to :mod:`differland_bayes.io`; the public names (:func:`to_monthly`,
:func:`select_site`) are re-exported there.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd
import xarray as xr

from ..dataset import CONVENTIONS, STREAMS, add_masks

__all__ = [
    "MISSING_SENTINEL",
    "SITE_TIME_VALID",
    "clip_roundoff",
    "default_split_time",
    "finish",
    "infer_step",
    "select_site",
    "stream_attrs",
    "to_monthly",
    "to_ns",
    "unc_attrs",
]

log = logging.getLogger(__name__)

MISSING_SENTINEL = -9999.0
#: name of the (site, time) flag marking each site's own record in a multi-site dataset
SITE_TIME_VALID = "site_time_valid"
#: default share of a month's calendar days that must be observed for a monthly mean
MONTHLY_MIN_FRACTION = 0.5


def to_ns(time) -> pd.DatetimeIndex:
    """Return ``time`` as a :class:`pandas.DatetimeIndex` with nanosecond resolution."""
    return pd.DatetimeIndex(time).as_unit("ns")


def infer_step(time: pd.DatetimeIndex, *, what: str = "time") -> str:
    """``"daily"`` or ``"monthly"`` (consecutive month starts); anything else is an error."""
    time = pd.DatetimeIndex(time)
    if len(time) < 2:
        raise ValueError(f"{what}: need at least 2 time steps to tell daily from monthly")
    d = np.diff(time.values).astype("timedelta64[s]").astype(float) / 86400.0
    if np.all(d == 1.0):
        return "daily"
    months = time.year * 12 + time.month
    if np.all(time.day == 1) and np.all(np.diff(months) == 1):
        return "monthly"
    raise ValueError(
        f"{what}: expected daily steps (1 d) or consecutive calendar months stamped on the "
        f"first of the month; found steps from {d.min():g} to {d.max():g} d starting "
        f"{time[0].date()}"
    )


def sentinel_to_nan(values: np.ndarray) -> np.ndarray:
    """Float copy of ``values`` with the CARDAMOM ``-9999`` sentinel replaced by NaN."""
    v = np.asarray(values, float)
    return np.where(v == MISSING_SENTINEL, np.nan, v)


def clip_roundoff(values, name: str, *, tol: float = 1e-6):
    """Set round-off negatives (``-tol <= x < 0``) of a non-negative quantity to 0.

    Monthly means of gridded radiation and precipitation can be ``-7e-15``; the forcing
    builder rejects any negative value. Larger negatives are left for it to report.
    """
    v = np.asarray(values, float)
    small = (v < 0) & (v >= -tol)
    n = int(small.sum())
    if n:
        log.info("%s: set %d round-off negative values (>= %g) to 0", name, n, -tol)
        v = np.where(small, 0.0, v)
    return v


def stream_attrs(stream: str, source_name: str | None = None) -> dict[str, str]:
    """``units``/``long_name`` attributes of a canonical stream."""
    info = STREAMS[stream]
    attrs = {"units": info.units, "long_name": info.long_name}
    if source_name:
        attrs["source_name"] = source_name
    return attrs


def unc_attrs(stream: str, source_name: str | None = None) -> dict[str, str]:
    """Attributes of the ``<stream>_unc`` variable (1-sigma, units of the stream)."""
    attrs = {
        "units": STREAMS[stream].units,
        "long_name": f"one-standard-deviation uncertainty of {stream}",
    }
    if source_name:
        attrs["source_name"] = source_name
    return attrs


def default_split_time(time: pd.DatetimeIndex, valid: np.ndarray | None = None) -> np.ndarray:
    """DifferLand v1.0 time split per site: 1 = first ceil(n_years/2) years, 2 = rest.

    Parameters
    ----------
    time : pandas.DatetimeIndex
        Daily or monthly time axis.
    valid : numpy.ndarray of bool, shape (site, time), optional
        Each site's own record; the rule is applied to each site's record and steps
        outside it get 0 (not used). ``None``: every site covers the whole axis.

    Returns
    -------
    numpy.ndarray of int8, shape (site, time) or (time,) when ``valid`` is None
        0 = not used, 1 = training, 2 = validation.

    Notes
    -----
    ``n_years`` counts days / 365.25 for daily data (as
    :func:`differland_bayes.forcing.published_train_mask`) and months / 12 for monthly.
    """
    from ..forcing import published_train_mask

    time = pd.DatetimeIndex(time)
    step = infer_step(time) if len(time) > 1 else "daily"

    def rule(t: pd.DatetimeIndex) -> np.ndarray:
        if step == "monthly":
            n_years = round(len(t) / 12)
            train = np.asarray(t.year < t[0].year + int(np.ceil(n_years / 2)))
        else:
            train = published_train_mask(t)
        return np.where(train, 1, 2).astype(np.int8)

    if valid is None:
        return rule(time)
    valid = np.asarray(valid, bool)
    out = np.zeros(valid.shape, np.int8)
    for i in range(valid.shape[0]):
        idx = np.flatnonzero(valid[i])
        if idx.size:
            out[i, idx] = rule(time[idx])
    return out


def finish(
    ds: xr.Dataset,
    *,
    step: str,
    source: str,
    attrs: Mapping[str, str] | None = None,
) -> xr.Dataset:
    """Add masks (``isfinite`` of each stream), ``split_site`` and the global attributes."""
    ds = add_masks(ds)
    if SITE_TIME_VALID in ds:
        for s in STREAMS:
            if f"{s}_mask" in ds:
                ds[f"{s}_mask"] = ds[f"{s}_mask"] & ds[SITE_TIME_VALID]
                ds[f"{s}_mask"].attrs = {
                    "long_name": f"True where {s} was observed",
                    "flag_meanings": "missing observed",
                }
    if "split_site" not in ds:
        ds["split_site"] = xr.DataArray(
            np.full(ds.sizes["site"], "train"),
            dims="site",
            attrs={"long_name": "which sites a fit may see: train, validation or test"},
        )
    ds.attrs.update(dict(attrs or {}))
    ds.attrs.update(conventions=CONVENTIONS, step=step, source=source)
    return order_variables(ds)


def order_variables(ds: xr.Dataset) -> xr.Dataset:
    """Order variables: forcing, each stream with its mask and uncertainty, the rest."""
    from ..forcing import FORCING_VARIABLES

    first = [v for v in FORCING_VARIABLES if v in ds.data_vars]
    for s in STREAMS:
        first += [v for v in (s, f"{s}_mask", f"{s}_unc") if v in ds.data_vars]
    return ds[first + [v for v in ds.data_vars if v not in first]]


def split_time_attrs(note: str) -> dict[str, object]:
    """Attributes of ``split_time``."""
    return {
        "long_name": "time split: 0 = not used, 1 = training, 2 = validation",
        "flag_values": np.array([0, 1, 2], np.int8),
        "flag_meanings": "unused train validation",
        "rule": note,
    }


def to_monthly(ds: xr.Dataset, *, min_fraction: float = MONTHLY_MIN_FRACTION) -> xr.Dataset:
    """Aggregate a daily canonical dataset to calendar months (stamped on the 1st).

    Parameters
    ----------
    ds : xarray.Dataset
        Daily canonical dataset (``site x time``), optionally with ``site_time_valid``.
    min_fraction : float
        A month of a stream counts as observed only if at least this share of its
        calendar days were observed (``X_mask``); a site's month is in its record
        (monthly ``site_time_valid``) if at least this share of its days are.

    Returns
    -------
    xarray.Dataset
        Monthly canonical dataset:

        * forcing: mean over the site's days in the month (NaN outside its record);
        * ``X``: mean over the observed days, NaN unless the month counts as observed;
        * ``X_unc``: uncertainty of that mean for independent daily errors,
          ``sqrt(mean(u_i**2) / n)`` over the ``n`` observed days (equal to
          ``sqrt(sum(u_i**2)) / n`` when every observed day has an uncertainty; days
          without one are represented by the root mean square of the others). Daily
          flux errors are autocorrelated, so this is a lower bound;
        * ``split_time``: the split of the month's days (splits follow calendar years);
          0 for months outside the record;
        * ``X_mask``: ``isfinite(X)``.
    """
    if not 0 < min_fraction <= 1:
        raise ValueError(f"min_fraction: expected a value in (0, 1], found {min_fraction}")
    time = pd.DatetimeIndex(ds["time"].values)
    if infer_step(time) != "daily":
        raise ValueError("to_monthly: expected a daily dataset (1-day steps)")
    from ..forcing import FORCING_VARIABLES

    if SITE_TIME_VALID in ds:
        valid = ds[SITE_TIME_VALID].astype(bool)
    else:
        dims = tuple(d for d in ("site", "time") if d in ds.dims)
        valid = xr.DataArray(
            np.ones(tuple(ds.sizes[d] for d in dims), bool),
            dims=dims,
            coords={d: ds[d].values for d in dims if d in ds.coords},
        )
    res = {"time": "MS"}
    month_start = to_ns(valid["time"].resample(**res).first()["time"].values)
    calendar_days = xr.DataArray(
        np.asarray(month_start.days_in_month, float), dims="time", coords={"time": month_start}
    )
    in_record = valid.resample(**res).sum() >= min_fraction * calendar_days
    out = xr.Dataset(coords={k: v for k, v in ds.coords.items() if "time" not in v.dims})
    out = out.assign_coords(time=month_start)
    for name, da in ds.data_vars.items():
        if "time" not in da.dims:
            out[name] = da
    for name in FORCING_VARIABLES:
        if name in ds:
            m = ds[name].where(valid).resample(**res).mean()
            out[name] = m.where(in_record).assign_attrs(ds[name].attrs)
    for s in STREAMS:
        if s not in ds:
            continue
        mask = ds[f"{s}_mask"] if f"{s}_mask" in ds else np.isfinite(ds[s])
        mask = mask & np.isfinite(ds[s]) & valid
        n_obs = mask.resample(**res).sum()
        observed = (n_obs >= min_fraction * calendar_days) & in_record
        mean = ds[s].where(mask).resample(**res).mean()
        out[s] = mean.where(observed).assign_attrs(ds[s].attrs)
        uname = f"{s}_unc"
        if uname in ds:
            u = ds[uname].where(mask & np.isfinite(ds[uname]))
            n_u = np.isfinite(u).resample(**res).sum()
            msq = (u**2).resample(**res).sum() / n_u.where(n_u > 0)
            out[uname] = np.sqrt(msq / n_obs.where(n_obs > 0)).where(observed)
            out[uname].attrs = dict(ds[uname].attrs)
    if "split_time" in ds:
        st = ds["split_time"].where(valid, 0).resample(**res).max()
        out["split_time"] = st.where(in_record, 0).astype(np.int8)
        out["split_time"].attrs = dict(ds["split_time"].attrs)
    if SITE_TIME_VALID in ds:
        out[SITE_TIME_VALID] = in_record.astype(bool).assign_attrs(ds[SITE_TIME_VALID].attrs)
    out = add_masks(out.drop_vars([f"{s}_mask" for s in STREAMS], errors="ignore"))
    out.attrs = dict(ds.attrs)
    out.attrs["step"] = "monthly"
    out.attrs["monthly_aggregation"] = (
        f"calendar-month means of daily values; a stream's month counts as observed when "
        f">= {min_fraction:g} of its calendar days were observed; uncertainty of the mean "
        f"= sqrt(mean(u**2) / n_observed_days) (independent daily errors)"
    )
    return order_variables(out)


def select_site(ds: xr.Dataset, site: str, *, drop: bool = False) -> xr.Dataset:
    """One site of a multi-site dataset, trimmed to that site's own record.

    Parameters
    ----------
    ds : xarray.Dataset
        Canonical dataset; ``site_time_valid`` (if present) marks each site's record.
    site : str
        Site identifier.
    drop : bool
        Drop the ``site`` dimension (time-only variables, scalar ``lat``), as
        :func:`differland_bayes.io.read_fluxnet_site` returns; otherwise keep a site
        dimension of length 1.

    Returns
    -------
    xarray.Dataset
        The site on the steps of its record, with gap-free forcing, ready for
        :func:`differland_bayes.forcing.build_forcing`.

    Raises
    ------
    KeyError
        If ``site`` is not in the dataset.
    ValueError
        If the site's record is empty or has holes (forcing would not be gap-free).
    """
    sites = [str(s) for s in ds["site"].values]
    if site not in sites:
        raise KeyError(f"site {site!r} not in the dataset; available sites: {sites}")
    one = ds.sel(site=[site])
    if SITE_TIME_VALID in one:
        valid = np.asarray(one[SITE_TIME_VALID].values[0], bool)
        idx = np.flatnonzero(valid)
        if idx.size == 0:
            raise ValueError(f"site {site!r}: {SITE_TIME_VALID} is False at every step")
        if idx[-1] - idx[0] + 1 != idx.size:
            raise ValueError(
                f"site {site!r}: its record has {idx[-1] - idx[0] + 1 - idx.size} missing steps "
                f"between {str(one.time.values[idx[0]])[:10]} and "
                f"{str(one.time.values[idx[-1]])[:10]}; expected one contiguous record"
            )
        one = one.isel(time=slice(idx[0], idx[-1] + 1))
    if drop:
        one = one.squeeze("site", drop=False)
    return one
