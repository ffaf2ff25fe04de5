"""Climatological baselines that a fitted model should beat.

Two baselines of the CARDAMOM-FluxVal evaluation, for monthly data:

* :func:`site_seasonal_cycle` — each site's own mean seasonal cycle, from the months a
  fit may use (e.g. the assimilation months), predicting the other months of that site;
* :func:`class_climatology` — the mean seasonal cycle of each vegetation (IGBP) class
  over the training sites, with southern-hemisphere months shifted by six so that
  seasons line up, predicting sites no fit has seen from their class alone.

Calendar months with no training value are filled by circular linear interpolation
between the neighbouring months that have one (a site with a single observed month gets
that value everywhere); a class with no training site falls back to the climatology of
all training sites.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

__all__ = ["class_climatology", "monthly_cycle", "season_month", "site_seasonal_cycle"]


def season_month(time: Any, lat: Any) -> np.ndarray:
    """Month of the season, 0..11: the calendar month, shifted by six south of the equator.

    Parameters
    ----------
    time : array_like of datetime64, shape (time,)
        Time stamps of the steps.
    lat : array_like, shape (site,)
        Latitude in degrees north.

    Returns
    -------
    numpy.ndarray of int, shape (site, time)
    """
    month = (np.asarray(time, dtype="datetime64[M]").astype(int) % 12)[None, :]
    south = (np.asarray(lat, dtype=float) < 0)[:, None]
    return np.where(south, (month + 6) % 12, month)


def _fill_cycle(cycle: np.ndarray) -> np.ndarray:
    """Fill NaN months of a (..., 12) cycle by circular linear interpolation."""
    out = np.array(cycle, dtype=float)
    flat = out.reshape(-1, 12)
    months = np.arange(12)
    for row in flat:
        ok = np.isfinite(row)
        if ok.all() or not ok.any():
            continue
        xs = months[ok]
        ys = row[ok]
        xp = np.concatenate([xs - 12, xs, xs + 12])
        fp = np.concatenate([ys, ys, ys])
        row[~ok] = np.interp(months[~ok], xp, fp)
    return flat.reshape(out.shape)


def monthly_cycle(values: np.ndarray, month: np.ndarray) -> np.ndarray:
    """Mean of ``values`` per month index, NaN ignored, gaps interpolated.

    Parameters
    ----------
    values : numpy.ndarray, shape (site, time)
        Values with NaN where missing.
    month : numpy.ndarray of int, shape (site, time)
        Month index 0..11 of every entry.

    Returns
    -------
    numpy.ndarray, shape (site, 12)
        The cycle of every site (all NaN where a site has no value).
    """
    v = np.asarray(values, dtype=float)
    cyc = np.full((v.shape[0], 12), np.nan)
    for m in range(12):
        sel = np.where(month == m, v, np.nan)
        with np.errstate(invalid="ignore"):
            n = np.isfinite(sel).sum(axis=1)
            s = np.nansum(sel, axis=1)
        cyc[:, m] = np.where(n > 0, s / np.maximum(n, 1), np.nan)
    return _fill_cycle(cyc)


def _observed(ds: xr.Dataset, stream: str, use: Any | None) -> np.ndarray:
    if stream not in ds:
        raise ValueError(f"stream: expected a variable of the dataset, found {stream!r}")
    v = np.asarray(ds[stream].transpose("site", "time").values, dtype=float)
    mask_name = f"{stream}_mask"
    if mask_name in ds:
        v = np.where(np.asarray(ds[mask_name].transpose("site", "time").values), v, np.nan)
    if use is not None:
        u = np.asarray(use, dtype=bool)
        if u.shape != v.shape:
            raise ValueError(f"use: expected shape {v.shape} (site, time), found {u.shape}")
        v = np.where(u, v, np.nan)
    return v


def site_seasonal_cycle(ds: xr.Dataset, stream: str, use: Any | None = None) -> xr.DataArray:
    """Predict every month of every site by the site's own mean seasonal cycle.

    Parameters
    ----------
    ds : xarray.Dataset
        Canonical monthly dataset with ``stream`` (and ``<stream>_mask``).
    stream : str
        The stream, e.g. ``"gpp"``.
    use : array_like of bool, shape (site, time), optional
        The entries the cycle may be computed from (e.g. ``split_time == 1``); default
        every observed entry.

    Returns
    -------
    xarray.DataArray, dims (site, time)
        The prediction, in the units of the stream (NaN for a site with no usable value).
    """
    v = _observed(ds, stream, use)
    month = season_month(ds["time"].values, np.zeros(v.shape[0]))
    cyc = monthly_cycle(v, month)
    pred = np.take_along_axis(cyc, month, axis=1)
    return xr.DataArray(
        pred, dims=("site", "time"), coords={"site": ds["site"], "time": ds["time"]},
        name=f"{stream}_site_cycle", attrs=dict(ds[stream].attrs),
    )  # fmt: skip


def class_climatology(
    train: xr.Dataset,
    target: xr.Dataset,
    stream: str,
    use: Any | None = None,
    *,
    class_coord: str = "vegetation_class",
) -> xr.DataArray:
    """Predict the sites of ``target`` by the seasonal cycle of their class in ``train``.

    The class cycle is the mean over the training sites of the class of each site's own
    cycle (so sites with long records do not dominate), on the season month of
    :func:`season_month` (southern-hemisphere months shifted by six), and is shifted back
    for southern target sites.

    Parameters
    ----------
    train, target : xarray.Dataset
        Canonical monthly datasets with ``lat`` and ``class_coord`` site coordinates.
    stream : str
        The stream.
    use : array_like of bool, shape (site, time) of ``train``, optional
        Training entries that may be used (default: every observed one).
    class_coord : str
        The site coordinate holding the class.

    Returns
    -------
    xarray.DataArray, dims (site, time) of ``target``
    """
    for name, d in (("train", train), ("target", target)):
        for c in ("lat", class_coord):
            if c not in d.coords:
                raise ValueError(f"{name}: expected a site coordinate {c!r}, found none")
    v = _observed(train, stream, use)
    cyc = monthly_cycle(v, season_month(train["time"].values, train["lat"].values))
    classes = np.asarray(train[class_coord].values).astype(str)
    has = np.isfinite(cyc).all(axis=1)
    overall = np.nanmean(cyc[has], axis=0) if has.any() else np.full(12, np.nan)
    t_month = season_month(target["time"].values, target["lat"].values)
    t_class = np.asarray(target[class_coord].values).astype(str)
    pred = np.full(t_month.shape, np.nan)
    for i, c in enumerate(t_class):
        rows = has & (classes == c)
        class_cycle = np.nanmean(cyc[rows], axis=0) if rows.any() else overall
        pred[i] = class_cycle[t_month[i]]
    return xr.DataArray(
        pred, dims=("site", "time"),
        coords={"site": target["site"], "time": target["time"]},
        name=f"{stream}_class_climatology", attrs=dict(target[stream].attrs),
    )  # fmt: skip
