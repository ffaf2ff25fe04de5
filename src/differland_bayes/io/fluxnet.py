"""Readers of the CARDAMOM-style daily FLUXNET site drivers (DifferLand v1.0 ``drivers/``).

The files store ``time`` as integer days since 2001-01-01 with no ``units`` attribute,
forcing under CARDAMOM names and observations with NaN (and ``-9999`` in ``SWC`` at some
sites) for missing values.

:func:`read_fluxnet_site` reads one file (time only); :func:`read_fluxnet_sites` reads a
folder of them into one canonical ``site x time`` dataset (``docs/data-format.md``).

The sites cover different years (1999-2007 ... 2011-2019). The multi-site dataset uses
the union of their days as its time axis; each site's forcing and observations are filled
only on the days of its own file, and the boolean ``site_time_valid`` (``site x time``)
marks them. Outside a site's record its forcing is NaN, its masks are False and its
``split_time`` is 0. Nothing is invented: no padding, no relative time axis. To run a
model, take one site with :func:`select_site` (trimmed to its record, gap-free forcing),
or read sites that share their years, or ``period="common"`` (the years all chosen sites
share), for which every step is valid.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr

from ._canonical import (
    SITE_TIME_VALID,
    default_split_time,
    finish,
    select_site,
    sentinel_to_nan,
    split_time_attrs,
    stream_attrs,
    to_monthly,
    to_ns,
    unc_attrs,
)
from .predictors import add_env_features

__all__ = [
    "FLUXNET_FORCING",
    "FLUXNET_OBSERVATIONS",
    "FLUXNET_UNCERTAINTIES",
    "read_fluxnet_site",
    "read_fluxnet_sites",
    "select_site",
    "to_monthly",
]

log = logging.getLogger(__name__)

CARDAMOM_EPOCH = pd.Timestamp("2001-01-01")

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
#: CARDAMOM uncertainty name -> canonical stream it belongs to
FLUXNET_UNCERTAINTIES = {
    "GPPunc": "gpp",
    "NBEunc": "nee",
    "RECOunc": "reco",
    "ETunc": "et",
    "LAIunc": "lai",
    "EWTunc": "ewt",
}
#: site-table columns: canonical -> (site_coords.csv column, sites.csv column)
_TABLE_COLUMNS = {
    "site": ("SITE_ID", "site_id"),
    "lat": ("lat", "lat"),
    "lon": ("lon", "lon"),
    "elevation": ("ELEV", "elev_m"),
    "map": ("MAP", "map_mm"),
    "mat": ("MAT", "mat_degC"),
    "vegetation_class": ("IGBP", "igbp"),
    "aridity_cluster": ("cluster", "aridity_cluster"),
}
_ENV_UNITS = {"elevation": "m", "map": "mm yr-1", "mat": "degC"}
_ATTRS = {
    "title": "FLUXNET eddy-covariance site drivers of DifferLand v1.0 (daily)",
    "references": (
        "Fang, J. & Gentine, P. (2024) Exploring optimal complexity for water stress "
        "representation in terrestrial carbon models: a hybrid-machine learning model "
        "approach, JAMES 16(12), e2024MS004308; Pastorello, G. et al. (2020) The FLUXNET2015 "
        "dataset and the ONEFlux processing pipeline for eddy covariance data, Sci. Data 7, 225"
    ),
    "license": (
        "flux data CC-BY-4.0 (FLUXNET, AmeriFlux, ICOS, OzFlux; attribution required); "
        "packaging MIT (JianingFang/DifferLand_v1.0)"
    ),
}


def _read_site_file(path: str) -> xr.Dataset:
    """One site file with canonical forcing, streams and ``<stream>_unc`` (time only)."""
    with xr.open_dataset(path, decode_times=False) as raw:
        raw = raw.load()
    missing = [v for v in (*FLUXNET_FORCING, "LAT", "time") if v not in raw.variables]
    if missing:
        raise ValueError(f"{path}: not a CARDAMOM site driver; missing variables {missing}")
    days = np.asarray(raw["time"].values, float)
    if np.any(np.diff(days) != 1):
        raise ValueError(f"{path}: expected consecutive daily time steps (1 d apart)")
    time = to_ns(CARDAMOM_EPOCH + pd.to_timedelta(days, unit="D"))
    out = xr.Dataset(coords={"time": ("time", time)})
    for src, (name, units) in FLUXNET_FORCING.items():
        out[name] = ("time", np.asarray(raw[src].values, float), {"units": units, "long_name": src})
    for src, (name, units, long_name) in FLUXNET_OBSERVATIONS.items():
        if src in raw:
            v = sentinel_to_nan(raw[src].values)
            out[name] = ("time", v, {"units": units, "long_name": long_name})
    for src, stream in FLUXNET_UNCERTAINTIES.items():
        if src in raw and stream in out:
            out[f"{stream}_unc"] = (
                "time",
                sentinel_to_nan(raw[src].values),
                unc_attrs(stream, src),
            )
    out = out.assign_coords(lat=((), float(raw["LAT"].values), {"units": "degrees_north"}))
    out.attrs["site"] = os.path.splitext(os.path.basename(path))[0]
    out.attrs["source"] = path
    return out


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
    out = _read_site_file(os.fspath(path))
    return out.drop_vars([v for v in out.data_vars if v.endswith("_unc")])


def _read_site_table(folder: Path) -> tuple[pd.DataFrame, Path]:
    """Read the site table (``site_coords.csv``, else ``sites.csv``), canonical columns."""
    for k, name in enumerate(("site_coords.csv", "sites.csv")):
        path = folder / name
        if not path.is_file():
            continue
        raw = pd.read_csv(path, dtype={c[k]: str for c in _TABLE_COLUMNS.values()})
        cols = {canon: names[k] for canon, names in _TABLE_COLUMNS.items()}
        absent = [c for c in cols.values() if c not in raw.columns]
        if absent:
            raise ValueError(f"{path}: missing columns {absent}; found {list(raw.columns)}")
        table = raw[list(cols.values())].set_axis(list(cols), axis=1)
        table["site"] = table["site"].str.strip()
        return table.set_index("site"), path
    raise FileNotFoundError(
        f"{folder}: no site table; expected site_coords.csv (SITE_ID, lon, lat, ELEV, MAP, "
        "MAT, IGBP, cluster) or sites.csv (site_id, lat, lon, elev_m, igbp, map_mm, mat_degC)"
    )


def read_fluxnet_sites(
    folder: str | os.PathLike,
    *,
    sites: Sequence[str] | None = None,
    monthly: bool = False,
    period: Literal["union", "common"] = "union",
    min_fraction: float = 0.5,
) -> xr.Dataset:
    """Read the daily site drivers of a folder into one canonical ``site x time`` dataset.

    Parameters
    ----------
    folder : path-like
        ``data/fluxnet-sites``: ``<SITE>.nc`` files and ``site_coords.csv`` (or
        ``sites.csv``) with coordinates, elevation, MAP, MAT and IGBP class.
    sites : sequence of str, optional
        Sites to read, in this order; default every ``*.nc`` file, sorted by name.
    monthly : bool
        Aggregate to calendar months with :func:`to_monthly`.
    period : {"union", "common"}
        Time axis: ``"union"`` spans every day of any chosen site, each site filled on
        its own record only (``site_time_valid``); ``"common"`` keeps only the days all
        chosen sites share (error if none), so the forcing is gap-free everywhere.
    min_fraction : float
        With ``monthly``: share of a month's days that must be observed (per stream) or
        in the site's record for the month to count (see :func:`to_monthly`).

    Returns
    -------
    xarray.Dataset
        Canonical dataset (``docs/data-format.md``):

        * forcing ``t_min``, ``t_max`` (degC), ``swrad`` (MJ m-2 d-1), ``co2`` (ppm),
          ``vpd`` (hPa), ``precip`` (mm d-1); NaN only outside a site's record;
        * streams ``gpp``, ``nee`` (file ``NBE``), ``reco`` (gC m-2 d-1), ``et`` (mm d-1),
          ``lai`` (m2 m-2), ``swc`` (%), ``ewt`` (mm) with ``X_mask`` (``isfinite``) and
          ``X_unc`` from ``GPPunc``, ``NBEunc``, ``RECOunc``, ``ETunc``, ``LAIunc``,
          ``EWTunc`` (an uncertainty missing at every site, like ``EWTunc``, is dropped);
          ``-9999`` is NaN;
        * ``site_time_valid`` (bool, ``site x time``): the site's own record;
        * ``split_time``: DifferLand v1.0 rule on each site's own record (first
          ``ceil(n_years / 2)`` calendar years 1 = training, the rest 2 = validation,
          0 outside the record); ``split_site`` all ``"train"``;
        * coordinates ``lat`` (the files' ``LAT``, used by the published models; a
          disagreement with the site table is logged), ``lon``, ``vegetation_class``
          (IGBP) and ``aridity_cluster`` (DifferLand cluster) from the site table;
        * ``env``: ``elevation`` (m), ``map`` (mm yr-1), ``mat`` (degC) from the site
          table (published site values, not derived from the forcing).

    Raises
    ------
    FileNotFoundError
        If the folder, a site file or the site table is missing.
    ValueError
        If a requested site is not in the site table, or ``period="common"`` and the
        sites share no day.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: FLUXNET site folder not found")
    if period not in ("union", "common"):
        raise ValueError(f"period: expected 'union' or 'common', found {period!r}")
    if sites is None:
        sites = sorted(p.stem for p in folder.glob("*.nc"))
        if not sites:
            raise FileNotFoundError(f"{folder}: no <SITE>.nc files")
    sites = [str(s) for s in sites]
    if len(set(sites)) != len(sites):
        raise ValueError(f"sites: repeated site ids in {sites}")
    absent = [s for s in sites if not (folder / f"{s}.nc").is_file()]
    if absent:
        raise FileNotFoundError(f"{folder}: no file for sites {absent} (expected <SITE>.nc)")
    table, table_path = _read_site_table(folder)
    not_in_table = [s for s in sites if s not in table.index]
    if not_in_table:
        raise ValueError(f"{table_path}: sites {not_in_table} are not in the site table")
    per_site = [_read_site_file(os.fspath(folder / f"{s}.nc")) for s in sites]
    for s, one in zip(sites, per_site, strict=True):
        lat_file, lat_table = float(one["lat"]), float(table.loc[s, "lat"])
        if abs(lat_file - lat_table) > 0.01:
            log.warning(
                "%s: LAT %.4f in the file but %.4f in %s", s, lat_file, lat_table, table_path.name
            )

    starts = [one.time.values[0] for one in per_site]
    ends = [one.time.values[-1] for one in per_site]
    if period == "common":
        first, last = max(starts), min(ends)
        if first > last:
            spans = {
                s: f"{str(a)[:10]}..{str(b)[:10]}"
                for s, a, b in zip(sites, starts, ends, strict=True)
            }
            raise ValueError(f"period='common': the sites share no day; records: {spans}")
    else:
        first, last = min(starts), max(ends)
    time = to_ns(pd.date_range(first, last, freq="D"))
    full = to_ns(pd.date_range(min(starts), max(ends), freq="D"))

    n_site, n_full = len(sites), len(full)
    valid_full = np.zeros((n_site, n_full), bool)
    for i, one in enumerate(per_site):
        valid_full[i, full.get_indexer(one.time.values)] = True
    # the split follows each site's whole record, also when period="common" trims it
    split_full = default_split_time(full, valid_full)
    keep = full.get_indexer(time)

    names = [v for v in per_site[0].data_vars]
    for one in per_site[1:]:
        names += [v for v in one.data_vars if v not in names]
    data = {}
    for name in names:
        arr = np.full((n_site, n_full), np.nan)
        attrs = {}
        for i, one in enumerate(per_site):
            if name in one:
                arr[i, full.get_indexer(one.time.values)] = one[name].values
                attrs = attrs or dict(one[name].attrs)
        if name.endswith("_unc") and not np.isfinite(arr).any():
            log.info("%s: missing at every site; not stored", name)
            continue
        if name in _stream_names():
            attrs = stream_attrs(name, _source_name(name))
        elif name in _FORCING_SOURCE:
            attrs = {
                "units": attrs["units"],
                "long_name": _forcing_long_name(name),
                "source_name": _FORCING_SOURCE[name],
            }
        data[name] = (("site", "time"), arr[:, keep], attrs)
    ds = xr.Dataset(data, coords={"site": np.asarray(sites, dtype=str), "time": time})
    ds[SITE_TIME_VALID] = (
        ("site", "time"),
        valid_full[:, keep],
        {"long_name": "True on the days of the site's own record (forcing defined)"},
    )
    ds["split_time"] = (
        ("site", "time"),
        split_full[:, keep],
        split_time_attrs(
            "DifferLand v1.0: first ceil(n_years/2) calendar years of each site's record "
            "= 1 (training), the rest = 2 (validation), 0 outside the record"
        ),
    )
    tab = table.loc[sites]
    ds = ds.assign_coords(
        lat=(
            "site",
            np.asarray([float(one["lat"]) for one in per_site]),  # LAT of the driver files
            {"units": "degrees_north", "long_name": "site latitude"},
        ),
        lon=(
            "site",
            tab["lon"].to_numpy(float),
            {"units": "degrees_east", "long_name": "site longitude"},
        ),
        vegetation_class=(
            "site",
            tab["vegetation_class"].str.strip().to_numpy(str),
            {"long_name": "IGBP vegetation class"},
        ),
        aridity_cluster=(
            "site",
            tab["aridity_cluster"].str.strip().to_numpy(str),
            {"long_name": "aridity cluster of DifferLand v1.0"},
        ),
    )
    ds = add_env_features(ds, {k: tab[k].to_numpy(float) for k in _ENV_UNITS}, _ENV_UNITS)
    ds = finish(
        ds,
        step="daily",
        source=os.fspath(folder),
        attrs={**_ATTRS, "site_table": table_path.name, "period": period},
    )
    if monthly:
        ds = to_monthly(ds, min_fraction=min_fraction)
    n_gap = int((~ds[SITE_TIME_VALID]).sum())
    if n_gap:
        log.info(
            "read_fluxnet_sites: %d site-steps lie outside the sites' records (NaN "
            "forcing; use select_site or period='common' before build_forcing)",
            n_gap,
        )
    return ds


_FORCING_SOURCE = {name: src for src, (name, _) in FLUXNET_FORCING.items()}


def _forcing_long_name(name: str) -> str:
    from ..forcing import FORCING_VARIABLES

    return FORCING_VARIABLES[name][2]


def _stream_names() -> set[str]:
    return {name for name, _, _ in FLUXNET_OBSERVATIONS.values()}


def _source_name(stream: str) -> str:
    return next(src for src, (name, _, _) in FLUXNET_OBSERVATIONS.items() if name == stream)
