"""Predictors from a site's satellite leaf-area record: level, seasonality and timing.

The calendar-month climatology of ``lai`` (12 means over whatever years a site has)
summarised as four numbers that a prior network can map to phenology parameters:

* ``lai_mean`` (m2 m-2): mean of the 12 calendar-month means;
* ``lai_amplitude`` (m2 m-2): their population standard deviation;
* ``lai_cos``, ``lai_sin`` (m2 m-2): the first annual harmonic of the climatology,
  ``(2/12) sum_m c_m cos(2 pi (m - 0.5) / 12)`` and the same with ``sin``; their angle
  is the calendar time of the seasonal peak (``atan2(lai_sin, lai_cos)`` in radians
  from 1 January, a full turn per year) and their length its half-amplitude.

Calendar months without any value are filled by circular linear interpolation between
the months that have one; a site with fewer than :data:`MIN_LAI_MONTHS` calendar months
gets NaN, as does a site without any leaf-area record (``derive_predictors`` warns).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["LAI_PREDICTORS", "MIN_LAI_MONTHS", "annual_harmonic", "lai_predictors"]

#: predictors :func:`lai_predictors` computes: name -> (units, description)
LAI_PREDICTORS: dict[str, tuple[str, str]] = {
    "lai_mean": ("m2 m-2", "mean of the 12 calendar-month means of the satellite LAI"),
    "lai_amplitude": ("m2 m-2", "standard deviation of the 12 calendar-month LAI means"),
    "lai_cos": ("m2 m-2", "cosine coefficient of the annual harmonic of the LAI climatology"),
    "lai_sin": ("m2 m-2", "sine coefficient of the annual harmonic of the LAI climatology"),
}
#: fewest calendar months with a value for a site's climatology to count
MIN_LAI_MONTHS = 6


def _fill_circular(clim: np.ndarray) -> np.ndarray:
    """Fill NaN calendar months by linear interpolation around the year, per row."""
    out = clim.copy()
    months = np.arange(12)
    for i, row in enumerate(clim):
        ok = np.isfinite(row)
        if ok.sum() < MIN_LAI_MONTHS:
            out[i] = np.nan
        elif not ok.all():
            xp = np.concatenate([months[ok] - 12, months[ok], months[ok] + 12])
            fp = np.tile(row[ok], 3)
            out[i] = np.interp(months, xp, fp)
    return out


def lai_climatology(ds: xr.Dataset) -> np.ndarray:
    """Calendar-month means of ``lai`` per site, ``(site, 12)`` (m2 m-2), gaps filled.

    Parameters
    ----------
    ds : xarray.Dataset
        Canonical dataset with a ``lai`` variable ``(site, time)``; every finite value
        counts (the satellite record need not match the tower record).

    Raises
    ------
    ValueError
        If ``ds`` has no ``lai`` variable.
    """
    if "lai" not in ds:
        raise ValueError(
            "derive_predictors: the lai_* predictors need a 'lai' variable (satellite leaf "
            "area index, m2 m-2) in the dataset; found none"
        )
    lai = np.asarray(ds["lai"].transpose("site", "time").values, float)
    month = pd.DatetimeIndex(ds["time"].values).month.values
    clim = np.full((lai.shape[0], 12), np.nan)
    for m in range(1, 13):
        sel = lai[:, month == m]
        n = np.isfinite(sel).sum(axis=1)
        total = np.where(np.isfinite(sel), sel, 0.0).sum(axis=1)
        clim[:, m - 1] = np.where(n > 0, total / np.maximum(n, 1), np.nan)
    return _fill_circular(clim)


def annual_harmonic(clim: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First annual harmonic of calendar-month climatologies (last axis: 12 months).

    Parameters
    ----------
    clim : numpy.ndarray, shape (..., 12)
        Calendar-month means ``c_m``, January first (NaN propagates).

    Returns
    -------
    tuple of numpy.ndarray, shape (...)
        ``(2/12) sum_m c_m cos(2 pi (m - 0.5) / 12)`` and the same with ``sin``, in the
        units of ``clim``: months centred at ``(m - 0.5) / 12`` of a turn from 1 January,
        so that ``atan2(sin, cos)`` is the time of the seasonal maximum.
    """
    phase = 2.0 * np.pi * (np.arange(12) + 0.5) / 12.0
    clim = np.asarray(clim, float)
    cos = (2.0 / 12.0) * (clim * np.cos(phase)).sum(axis=-1)
    sin = (2.0 / 12.0) * (clim * np.sin(phase)).sum(axis=-1)
    return cos, sin


def lai_predictors(ds: xr.Dataset, which: list[str]) -> dict[str, np.ndarray]:
    """Compute the requested :data:`LAI_PREDICTORS` per site (NaN where LAI is too scarce).

    Parameters
    ----------
    ds : xarray.Dataset
        Canonical dataset with ``lai`` (see :func:`lai_climatology`).
    which : list of str
        Names from :data:`LAI_PREDICTORS`.

    Returns
    -------
    dict
        Name -> ``(site,)`` values.
    """
    clim = lai_climatology(ds)
    cos, sin = annual_harmonic(clim)
    values = {
        "lai_mean": clim.mean(axis=1),
        "lai_amplitude": clim.std(axis=1),
        "lai_cos": cos,
        "lai_sin": sin,
    }
    return {n: values[n] for n in which}
