"""Reader of CARDAMOM-FluxVal v1.0 (``data/cardamom-fluxval/fluxval_monthly.nc``).

176 FLUXNET2015 sites x 192 months (2001-2016): gridded reanalysis meteorology of the
0.5 degree cell that contains each tower, monthly tower GPP, NEE and ET with the
assimilation / withheld split of Yang et al. (2022), satellite LAI and one biomass value
per site.

Latitude. ``lat`` is the tower latitude and is the one
:func:`differland_bayes.forcing.build_forcing` uses (it reads ``lat``). CARDAMOM's own
radiation code used the latitude of the meteorology cell, kept as the ``grid_lat``
coordinate (at most 0.25 degree away); to reproduce CARDAMOM, build the forcing from
``ds.assign_coords(lat=ds["grid_lat"])``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..units import UnitError, convert, normalise_unit
from ._canonical import (
    clip_roundoff,
    finish,
    infer_step,
    sentinel_to_nan,
    split_time_attrs,
    stream_attrs,
    to_ns,
)
from .predictors import add_env_features, derive_predictors

__all__ = ["FLUXVAL_FORCING", "FLUXVAL_STREAMS", "read_fluxval"]

log = logging.getLogger(__name__)

#: file name -> (canonical name, quantity of :mod:`differland_bayes.units`)
FLUXVAL_FORCING = {
    "T2M_MIN": ("t_min", "temperature"),
    "T2M_MAX": ("t_max", "temperature"),
    "SSRD": ("swrad", "radiation"),
    "CO2": ("co2", "co2"),
    "VPD": ("vpd", "vpd"),
    "TOTAL_PREC": ("precip", "precipitation"),
}
#: file name -> canonical stream
FLUXVAL_STREAMS = {"GPP": "gpp", "NEE": "nee", "ET": "et", "LAI": "lai", "ABGB": "biomass"}
_CANONICAL_UNITS = {
    "temperature": "degC",
    "radiation": "MJ m-2 d-1",
    "co2": "ppm",
    "vpd": "hPa",
    "precipitation": "mm d-1",
}
#: non-negative forcing whose monthly means can carry round-off negatives (-7e-15)
_NON_NEGATIVE = ("swrad", "precip", "vpd")
#: sites.csv column -> (assimilation/withheld split value, stream) counted in the file
_COUNT_COLUMNS = {
    "n_months_gpp_assim": (1, "gpp"),
    "n_months_gpp_valid": (2, "gpp"),
    "n_months_nee_assim": (1, "nee"),
    "n_months_nee_valid": (2, "nee"),
    "n_months_et_assim": (1, "et"),
    "n_months_et_valid": (2, "et"),
}


def _check_sites_csv(ds: xr.Dataset, path: Path) -> None:
    """Check the file against its ``sites.csv``; raise listing every disagreement."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: FluxVal site table not found")
    table = pd.read_csv(path, dtype={"site": str, "igbp": str})
    need = ["site", "lat", "lon", "igbp", "grid_lat"]
    absent = [c for c in need if c not in table.columns]
    if absent:
        raise ValueError(f"{path}: missing columns {absent}; found {list(table.columns)}")
    table = table.set_index("site")
    sites = [str(s) for s in ds["site"].values]
    problems = []
    missing = [s for s in sites if s not in table.index]
    extra = [s for s in table.index if s not in sites]
    if missing or extra:
        problems.append(
            f"sites in the file but not the table: {missing}; in the table but "
            f"not the file: {extra}"
        )
    common = [s for s in sites if s in table.index]
    tab = table.loc[common]
    sub = ds.sel(site=common)
    for col, coord in (("lat", "lat"), ("lon", "lon"), ("grid_lat", "grid_lat")):
        bad = np.abs(tab[col].to_numpy(float) - sub[coord].values) > 1e-3
        if bad.any():
            problems.append(f"{col} differs at sites {np.asarray(common)[bad].tolist()}")
    bad = tab["igbp"].str.strip().to_numpy(str) != sub["vegetation_class"].values
    if bad.any():
        problems.append(f"igbp differs at sites {np.asarray(common)[bad].tolist()}")
    for col, (split, stream) in _COUNT_COLUMNS.items():
        if col not in tab.columns:
            continue
        counts = (sub[f"{stream}_mask"] & (sub["split_time"] == split)).sum("time").values
        bad = counts != tab[col].to_numpy(int)
        if bad.any():
            problems.append(
                f"{col}: the file counts {counts[bad][:5].tolist()} months but the table "
                f"{tab[col].to_numpy(int)[bad][:5].tolist()} at sites "
                f"{np.asarray(common)[bad][:5].tolist()} ({int(bad.sum())} sites)"
            )
    if problems:
        raise ValueError(f"{path} disagrees with the FluxVal file:\n  - " + "\n  - ".join(problems))
    log.info("%s agrees with the FluxVal file (%d sites)", path, len(sites))


def read_fluxval(
    path: str | os.PathLike,
    sites_csv: str | os.PathLike | None = None,
    *,
    derive: Sequence[str] = ("mat", "map"),
) -> xr.Dataset:
    """Read CARDAMOM-FluxVal v1.0 into the canonical ``site x time`` layout.

    Parameters
    ----------
    path : path-like
        ``fluxval_monthly.nc``.
    sites_csv : path-like, optional
        Its ``sites.csv``; if given, site ids, ``lat``, ``lon``, ``igbp``, ``grid_lat``
        and the numbers of assimilation / withheld GPP, NEE and ET months are checked
        against the file (a disagreement is an error).
    derive : sequence of str
        Forcing-derived predictors to add to ``env`` (see
        :func:`differland_bayes.io.derive_predictors`); ``abs_lat`` is always there.

    Returns
    -------
    xarray.Dataset
        Monthly canonical dataset (time = first of the month):

        * forcing ``t_min``, ``t_max`` (degC), ``swrad`` (MJ m-2 d-1), ``vpd`` (hPa),
          ``precip`` (mm d-1), ``co2`` (ppm; the file's time-only series broadcast to
          every site), units checked and converted through :func:`units.convert`;
          round-off negatives (>= -1e-6) of swrad, precip and vpd set to 0;
        * streams ``gpp``, ``nee``, ``et`` (tower, monthly means), ``lai`` (satellite),
          ``biomass`` (file ``ABGB``, gC m-2, one month per site) with ``X_mask``;
        * ``split_time`` = the file's ``split`` (0 no flux data, 1 assimilation,
          2 withheld), as is; ``split_site`` all ``"train"``;
        * coordinates ``lat``, ``lon`` (tower), ``vegetation_class`` (``igbp``) and
          ``grid_lat`` (latitude of the 0.5 degree meteorology cell);
        * ``env``: ``abs_lat`` (degrees) and the ``derive`` predictors.

    Notes
    -----
    The split is a flux split: LAI outside the flux months and every biomass value
    (December 2015) fall in ``split_time == 0`` months, so a fit that uses only
    ``split_time == 1`` ignores them. ``build_forcing`` uses the tower ``lat``; see the
    module docstring for ``grid_lat``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: FluxVal file not found")
    with xr.open_dataset(path) as raw:
        raw = raw.load()
    need = [*FLUXVAL_FORCING, "split", "site", "time", "lat", "lon", "igbp", "grid_lat"]
    missing = [v for v in need if v not in raw.variables]
    if missing:
        raise ValueError(f"{path}: not a CARDAMOM-FluxVal file; missing variables {missing}")
    if not np.issubdtype(raw["time"].dtype, np.datetime64):
        raise ValueError(f"{path}: time: expected datetime64 values, found {raw['time'].dtype}")
    time = to_ns(raw["time"].values)
    infer_step(time, what=f"{path}: time")
    sites = np.asarray([str(s).strip() for s in raw["site"].values], dtype=str)
    shape = (len(sites), len(time))
    ds = xr.Dataset(coords={"site": sites, "time": time})
    problems: list[str] = []
    for src, (name, quantity) in FLUXVAL_FORCING.items():
        da = raw[src]
        if set(da.dims) - {"site", "time"} or "time" not in da.dims:
            problems.append(f"{src}: expected dims (site, time) or (time,), found {da.dims}")
            continue
        try:
            values = convert(
                np.asarray(
                    da.transpose(*[d for d in ("site", "time") if d in da.dims]).values, float
                ),
                da.attrs.get("units"),
                quantity,
                variable=src,
            )
        except UnitError as e:
            problems.append(str(e))
            continue
        values = np.broadcast_to(values if "site" in da.dims else values[None, :], shape).copy()
        if name in _NON_NEGATIVE:
            values = clip_roundoff(values, name)
        if not np.isfinite(values).all():
            problems.append(
                f"{src}: expected gap-free forcing, found "
                f"{int((~np.isfinite(values)).sum())} non-finite values"
            )
        if "site" not in da.dims:
            log.info("%s: time-only series broadcast to all %d sites", src, len(sites))
        ds[name] = (
            ("site", "time"),
            values,
            {
                "units": _CANONICAL_UNITS[quantity],
                "long_name": da.attrs.get("long_name", src),
                "source_name": src,
            },
        )
    for src, stream in FLUXVAL_STREAMS.items():
        if src not in raw:
            log.info("%s: no %s variable; stream %s not read", path, src, stream)
            continue
        da = raw[src].transpose("site", "time")
        attrs = stream_attrs(stream, src)
        units = da.attrs.get("units")
        if units is None or normalise_unit(units) != normalise_unit(attrs["units"]):
            problems.append(f"{src}: expected units {attrs['units']!r}, found {units!r}")
            continue
        ds[stream] = (("site", "time"), sentinel_to_nan(da.values), attrs)
    split = np.asarray(raw["split"].transpose("site", "time").values)
    bad = ~np.isin(split, (0, 1, 2))
    if bad.any():
        problems.append(f"split: expected values 0, 1, 2; found {np.unique(split[bad])}")
    if problems:
        raise ValueError(
            f"{path}: cannot read as canonical dataset:\n  - " + "\n  - ".join(problems)
        )
    ds["split_time"] = (
        ("site", "time"),
        split.astype(np.int8),
        split_time_attrs(
            "CARDAMOM-FluxVal v1.0 split as published (Yang et al. 2022): 1 assimilation, "
            "2 withheld validation, 0 no flux data"
        ),
    )
    ds = ds.assign_coords(
        lat=(
            "site",
            raw["lat"].values.astype(float),
            {"units": "degrees_north", "long_name": "tower latitude"},
        ),
        lon=(
            "site",
            raw["lon"].values.astype(float),
            {"units": "degrees_east", "long_name": "tower longitude"},
        ),
        vegetation_class=(
            "site",
            np.asarray([str(c).strip() for c in raw["igbp"].values], dtype=str),
            {"long_name": "IGBP vegetation class of the tower"},
        ),
        grid_lat=(
            "site",
            raw["grid_lat"].values.astype(float),
            {
                "units": "degrees_north",
                "long_name": "latitude of the 0.5 deg meteorology grid cell (CARDAMOM radiation "
                "used it; build_forcing uses lat)",
            },
        ),
    )
    attrs = {k: str(raw.attrs[k]) for k in ("title", "references", "license") if k in raw.attrs}
    ds = finish(ds, step="monthly", source=os.fspath(path), attrs=attrs)
    ds = add_env_features(ds, {"abs_lat": np.abs(ds["lat"].values)}, {"abs_lat": "degrees"})
    if derive:
        ds = derive_predictors(ds, tuple(derive))
    if sites_csv is not None:
        _check_sites_csv(ds, Path(sites_csv))
    return ds
