"""Sites with different records on one time axis: forcing outside a record, for a fit.

A multi-site dataset whose sites cover different periods (``site_time_valid``,
``docs/data-format.md``; e.g. ``io.read_fluxnet_sites(..., period="union")``) has NaN
forcing outside each site's record. A fit runs every site over the whole axis, so
:func:`fill_outside_records` fills those steps with the **site's own calendar
climatology** of each forcing variable (the mean over the site's valid steps on the same
day of the year -- 29 February counted as 28 February -- for daily data, or the same
calendar month for monthly data). Observations there stay masked: the filled steps only
spin the pools up (before a record) or run on unobserved (after it).

:func:`build_site_forcing` builds the model forcing of such a dataset site by site, with
the long-term statistics that the models read (long-term mean temperature and
precipitation, and the standardisation of DALEC990's network inputs) computed from each
site's own record, as if the site had been read alone; for a dataset whose sites are
valid everywhere it is :func:`~differland_bayes.forcing.build_forcing`.
"""

from __future__ import annotations

import logging
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr

from ..forcing import FORCING_VARIABLES, build_forcing, published_train_mask
from ..io._canonical import SITE_TIME_VALID, infer_step

__all__ = [
    "build_site_forcing",
    "calendar_key",
    "fill_outside_records",
    "record_mask",
    "site_climatology",
]

log = logging.getLogger(__name__)

#: days of the (non-leap) year a daily climatology needs; months of a monthly one
_N_KEYS = {"daily": 365, "monthly": 12}


def calendar_key(time: Any) -> tuple[np.ndarray, int, str]:
    """Calendar position of each step: day of a non-leap year, or month of the year.

    Parameters
    ----------
    time : array_like of datetime64
        Daily or calendar-monthly time axis.

    Returns
    -------
    key : numpy.ndarray of int
        ``(time,)`` 0-based day of the year with 29 February mapped onto 28 February
        (0..364) for daily steps, or the month (0..11) for monthly steps.
    n_keys : int
        365 or 12.
    step : {"daily", "monthly"}
        The step of the axis.
    """
    t = pd.DatetimeIndex(time)
    step = infer_step(t)
    if step == "monthly":
        return np.asarray(t.month - 1, int), 12, step
    doy = np.asarray(t.day_of_year, int)
    after_feb28 = np.asarray(t.is_leap_year, bool) & (doy >= 60)
    return doy - 1 - after_feb28.astype(int), 365, step


def record_mask(ds: xr.Dataset) -> np.ndarray:
    """``(site, time)`` bool: each site's own record (all True without ``site_time_valid``)."""
    if SITE_TIME_VALID in ds:
        return np.asarray(ds[SITE_TIME_VALID].transpose("site", "time").values, bool)
    return np.ones((ds.sizes["site"], ds.sizes["time"]), bool)


def site_climatology(values: np.ndarray, valid: np.ndarray, key: np.ndarray, n_keys: int):
    """Mean of ``values`` over the valid, finite steps of each calendar key.

    Parameters
    ----------
    values : numpy.ndarray
        ``(time,)`` values of one site (units of the variable).
    valid : numpy.ndarray of bool
        ``(time,)`` the site's record.
    key, n_keys
        From :func:`calendar_key`.

    Returns
    -------
    numpy.ndarray
        ``(n_keys,)`` climatology; NaN for a key without a valid finite step.
    """
    use = valid & np.isfinite(values)
    total = np.bincount(key[use], weights=values[use], minlength=n_keys)
    count = np.bincount(key[use], minlength=n_keys)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _check_coverage(site: str, valid: np.ndarray, time: pd.DatetimeIndex, key, n_keys, step):
    covered = np.unique(key[valid]).size
    if covered == n_keys:
        return
    unit = "day of the year" if step == "daily" else "calendar month"
    idx = np.flatnonzero(valid)
    found = (
        f"{idx.size} {step} step(s) in its record ({time[idx[0]].date()}..{time[idx[-1]].date()}), "
        f"covering {covered} of {n_keys}"
        if idx.size
        else "no step in its record (site_time_valid is False everywhere)"
    )
    raise ValueError(
        f"site {site!r}: cannot fill its forcing on the {int((~valid).sum())} {step} step(s) "
        f"outside its record; the calendar climatology used there needs a record covering "
        f"every {unit} (at least one full year, {n_keys} values), found {found}. Drop the "
        f"site (data.sites) or use data.period = 'common'"
    )


def fill_outside_records(ds: xr.Dataset) -> xr.Dataset:
    """Fill each site's forcing outside its record with its own calendar climatology.

    Parameters
    ----------
    ds : xarray.Dataset
        Canonical dataset (``site x time``, daily or monthly) with ``site_time_valid``.

    Returns
    -------
    xarray.Dataset
        A copy whose forcing variables (``FORCING_VARIABLES``, ``site x time``) are
        finite outside the records: ``x[s, t] = climatology_s(key(t))`` where
        ``site_time_valid[s, t]`` is False (:func:`site_climatology`, :func:`calendar_key`);
        values inside the records are unchanged. Observations, masks, ``split_time`` and
        ``site_time_valid`` are unchanged (observations stay masked outside the records).
        The input is returned as is when it has no ``site_time_valid`` or every step is
        valid.

    Raises
    ------
    ValueError
        For a site that needs filling but whose record does not cover every day of the
        year (every calendar month for monthly data), naming the site, what was expected
        and what was found.
    """
    valid = record_mask(ds)
    if valid.all():
        return ds
    time = pd.DatetimeIndex(ds["time"].values)
    key, n_keys, step = calendar_key(time)
    sites = [str(s) for s in ds["site"].values]
    need = np.flatnonzero(~valid.all(axis=1))
    for i in need:
        _check_coverage(sites[i], valid[i], time, key, n_keys, step)
    out = ds.copy()
    for name in FORCING_VARIABLES:
        if name not in ds or set(ds[name].dims) != {"site", "time"}:
            continue
        da = ds[name].transpose("site", "time")
        arr = np.array(da.values, float)
        for i in need:
            clim = site_climatology(arr[i], valid[i], key, n_keys)
            gap = ~valid[i]
            arr[i, gap] = clim[key[gap]]
        attrs = dict(da.attrs)
        attrs["fill_outside_record"] = (
            f"site's own {'day-of-year' if step == 'daily' else 'calendar-month'} "
            "climatology from its record (site_time_valid)"
        )
        out[name] = (("site", "time"), arr, attrs)
    for i in need:
        idx = np.flatnonzero(valid[i])
        log.info(
            "%s: forcing filled with its %s climatology on %d step(s) outside its record "
            "(%d before it: climatological spin-up; %d after it)",
            sites[i], "day-of-year" if step == "daily" else "calendar-month",
            int((~valid[i]).sum()), int(idx[0]), int(valid.shape[1] - 1 - idx[-1]),
        )  # fmt: skip
    return out


def _longterm(model: Any, time: pd.DatetimeIndex, valid: np.ndarray) -> np.ndarray:
    """Return the steps of one site's long-term statistics (as ``build_forcing`` alone)."""
    if model.name != "dalec990":
        return valid.copy()
    mask = np.zeros(valid.shape, bool)
    idx = np.flatnonzero(valid)
    mask[idx] = published_train_mask(time[idx])
    return mask


def build_site_forcing(ds: xr.Dataset, model: Any) -> Any:
    """Model forcing of every site on the whole time axis, filled outside the records.

    Parameters
    ----------
    ds : xarray.Dataset
        Canonical dataset (``site x time``), optionally with ``site_time_valid``.
    model : AbstractDalec
        The process model.

    Returns
    -------
    NamedTuple
        ``model.Forcing`` with fields ``(site, time)``. Without ``site_time_valid`` (or
        with every step valid) this is ``build_forcing(ds, model)``. Otherwise the
        forcing is filled by :func:`fill_outside_records` and built site by site with
        ``longterm`` = the steps the site alone would use (its record for DALEC993, the
        published training years of its record for DALEC990), so a site's forcing on
        its record equals that of ``build_forcing(io.select_site(ds, site), model)``.

    Raises
    ------
    ValueError
        From :func:`fill_outside_records` or ``build_forcing``.
    """
    valid = record_mask(ds)
    if valid.all():
        return build_forcing(ds, model)
    filled = fill_outside_records(ds)
    time = pd.DatetimeIndex(ds["time"].values)
    parts = [
        build_forcing(filled.isel(site=[i]), model, longterm=_longterm(model, time, valid[i]))
        for i in range(valid.shape[0])
    ]
    return jax.tree.map(lambda *a: jnp.concatenate(a, axis=0), *parts)
