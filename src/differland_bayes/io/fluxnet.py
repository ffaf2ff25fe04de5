"""Reader of the CARDAMOM-style daily FLUXNET site drivers (DifferLand v1.0 ``drivers/``).

The files store ``time`` as integer days since 2001-01-01 with no ``units`` attribute,
forcing under CARDAMOM names and observations with NaN (and ``-9999`` in ``SWC`` at some
sites) for missing values.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["FLUXNET_FORCING", "FLUXNET_OBSERVATIONS", "read_fluxnet_site"]

CARDAMOM_EPOCH = pd.Timestamp("2001-01-01")
MISSING_SENTINEL = -9999.0

#: CARDAMOM name -> (canonical name, canonical units)
FLUXNET_FORCING = {
    "T2M_MIN": ("t_min", "degC"),
    "T2M_MAX": ("t_max", "degC"),
    "SSRD": ("swrad", "MJ m-2 d-1"),
    "CO2": ("co2", "ppm"),
    "VPD": ("vpd", "hPa"),
    "TOTAL_PREC": ("precip", "mm d-1"),
}
#: CARDAMOM name -> (canonical name, units, long name)
FLUXNET_OBSERVATIONS = {
    "GPP": ("gpp", "gC m-2 d-1", "gross primary production"),
    "NBE": ("nee", "gC m-2 d-1", "net ecosystem exchange (positive = source)"),
    "RECO": ("reco", "gC m-2 d-1", "ecosystem respiration"),
    "ET": ("et", "mm d-1", "evapotranspiration"),
    "LAI": ("lai", "m2 m-2", "leaf area index (satellite)"),
    "SWC": ("swc", "%", "volumetric soil water content"),
    "EWT": ("ewt", "mm", "equivalent water thickness anomaly"),
}


def read_fluxnet_site(path: str | os.PathLike) -> xr.Dataset:
    """Read one daily site file into a dataset with canonical names and units.

    Parameters
    ----------
    path : path-like
        A ``<SITE>.nc`` file of ``data/fluxnet-sites``.

    Returns
    -------
    xarray.Dataset
        Daily ``time`` coordinate (datetime64), scalar ``lat`` coordinate (degrees_north),
        forcing ``t_min, t_max, swrad, co2, vpd, precip`` and observations ``gpp, nee,
        reco, et, lai, swc, ewt`` (NaN where missing), each with ``units`` and
        ``long_name``. The ``site`` attribute holds the file's stem.
    """
    path = os.fspath(path)
    with xr.open_dataset(path, decode_times=False) as raw:
        raw = raw.load()
    missing = [v for v in (*FLUXNET_FORCING, "LAT", "time") if v not in raw.variables]
    if missing:
        raise ValueError(f"{path}: not a CARDAMOM site driver; missing variables {missing}")
    time = CARDAMOM_EPOCH + pd.to_timedelta(np.asarray(raw["time"].values, float), unit="D")
    out = xr.Dataset(coords={"time": ("time", time)})
    for src, (name, units) in FLUXNET_FORCING.items():
        out[name] = ("time", np.asarray(raw[src].values, float), {"units": units, "long_name": src})
    for src, (name, units, long_name) in FLUXNET_OBSERVATIONS.items():
        if src in raw:
            v = np.asarray(raw[src].values, float)
            v = np.where(v == MISSING_SENTINEL, np.nan, v)
            out[name] = ("time", v, {"units": units, "long_name": long_name})
    out = out.assign_coords(lat=((), float(raw["LAT"].values), {"units": "degrees_north"}))
    out.attrs["site"] = os.path.splitext(os.path.basename(path))[0]
    out.attrs["source"] = path
    return out
