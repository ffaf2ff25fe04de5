"""Gridded CF NetCDF / Zarr forcing on ``(time, lat, lon)`` as a dataset of land pixels.

Each valid pixel becomes a site ``"lat{lat:.3f}_lon{lon:.3f}"``. The file is opened
lazily with dask, so that a grid larger than memory can be processed block by block
(:func:`iter_site_blocks`); :func:`read_gridded` returns the same sites as one lazy
(dask-backed) dataset chunked by ``block_size`` sites.

Valid pixels: those of the ``valid`` mask (a boolean variable of the file, or an array)
whose forcing is finite at every step; without a mask, every pixel with finite forcing
(so ocean cells, NaN in the forcing, drop out). Finding them reads the forcing once,
chunk by chunk.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..dataset import STREAMS
from ..units import UnitError, convert, normalise_unit
from ._canonical import (
    default_split_time,
    finish,
    infer_step,
    split_time_attrs,
    stream_attrs,
    to_ns,
)
from .predictors import add_env_features

__all__ = ["DEFAULT_BLOCK_SIZE", "GRIDDED_ALIASES", "iter_site_blocks", "read_gridded"]

log = logging.getLogger(__name__)

DEFAULT_BLOCK_SIZE = 4096  #: pixels per block (a block of 4096 pixels x 240 months x 6 is 47 MB)

#: canonical name -> file names tried in order (first found is used)
GRIDDED_ALIASES: dict[str, tuple[str, ...]] = {
    "t_min": ("t_min", "tmin", "T2M_MIN", "tasmin"),
    "t_max": ("t_max", "tmax", "T2M_MAX", "tasmax"),
    "swrad": ("swrad", "SSRD", "ssrd", "rsds"),
    "co2": ("co2", "CO2"),
    "vpd": ("vpd", "VPD"),
    "precip": ("precip", "TOTAL_PREC", "pr", "prcp"),
    "burned_area": ("burned_area", "BURNED_AREA"),
    **{s: (s, s.upper()) for s in STREAMS},
}
_LAT_NAMES = ("lat", "latitude")
_LON_NAMES = ("lon", "longitude")
_CLASS_NAMES = ("vegetation_class", "igbp")


@dataclass
class _Grid:
    """An opened gridded file: names resolved, valid pixels found."""

    path: str
    ds: xr.Dataset  # renamed to canonical names, dims (time, lat, lon) or (time,)
    ilat: np.ndarray  # row index of each valid pixel
    ilon: np.ndarray  # column index of each valid pixel
    step: str
    classes: np.ndarray | None  # (lat, lon) vegetation classes, if the file has them


def _open(path: Path, chunks) -> xr.Dataset:
    if not path.exists():
        raise FileNotFoundError(f"{path}: gridded file not found")
    if path.suffix.lower() == ".zarr":
        try:  # consolidated metadata if the store has it (without xarray's fallback warning)
            return xr.open_zarr(path, chunks=chunks, consolidated=True)
        except (KeyError, ValueError, FileNotFoundError):
            return xr.open_zarr(path, chunks=chunks, consolidated=False)
    if path.suffix.lower() in (".nc", ".nc4", ".netcdf"):
        return xr.open_dataset(path, chunks=chunks)
    raise ValueError(f"{path}: expected a .nc or .zarr path, found suffix {path.suffix!r}")


def _dim(ds: xr.Dataset, names: tuple[str, ...], what: str, path: str) -> str:
    lower = {str(d).lower(): str(d) for d in ds.dims}
    for n in names:
        if n in lower:
            return lower[n]
    raise ValueError(f"{path}: no {what} dimension; expected one of {names}, found {list(ds.dims)}")


def _resolve(raw: xr.Dataset, variables: Mapping[str, str] | None, path: str) -> dict[str, str]:
    """Canonical name -> file variable name."""
    from ..forcing import FORCING_VARIABLES

    found: dict[str, str] = {}
    if variables:
        unknown = [k for k in variables if k not in GRIDDED_ALIASES]
        if unknown:
            raise ValueError(
                f"variables: unknown canonical names {unknown}; expected forcing "
                f"{list(FORCING_VARIABLES)} or streams {list(STREAMS)}"
            )
        absent = {k: v for k, v in variables.items() if v not in raw.data_vars}
        if absent:
            raise ValueError(
                f"{path}: variables {absent} not in the file; it has {list(raw.data_vars)}"
            )
        found.update(variables)
    for name, aliases in GRIDDED_ALIASES.items():
        if name in found:
            continue
        hit = next((a for a in aliases if a in raw.data_vars), None)
        if hit is not None:
            found[name] = hit
    required = [n for n, (_, req, _) in FORCING_VARIABLES.items() if req and n not in found]
    if required:
        tried = {n: GRIDDED_ALIASES[n] for n in required}
        raise ValueError(
            f"{path}: missing required forcing {required}; looked for {tried} "
            f"(pass variables={{canonical: file_name}}); file has "
            f"{list(raw.data_vars)}"
        )
    return found


def _canonical_grid(raw: xr.Dataset, found: dict[str, str], path: str) -> xr.Dataset:
    """Lazy dataset of canonical variables on (time, lat, lon), units converted."""
    from ..forcing import FORCING_VARIABLES

    lat_dim = _dim(raw, _LAT_NAMES, "latitude", path)
    lon_dim = _dim(raw, _LON_NAMES, "longitude", path)
    if "time" not in raw.dims:
        raise ValueError(f"{path}: no 'time' dimension; found {list(raw.dims)}")
    raw = raw.rename({lat_dim: "lat", lon_dim: "lon"})
    out = xr.Dataset(coords={"time": raw["time"], "lat": raw["lat"], "lon": raw["lon"]})
    problems: list[str] = []
    for name, src in found.items():
        da = raw[src]
        if "time" not in da.dims or not set(da.dims) <= {"time", "lat", "lon"}:
            problems.append(f"{src}: expected dims (time, lat, lon) or (time,), found {da.dims}")
            continue
        da = da.transpose(*[d for d in ("time", "lat", "lon") if d in da.dims])
        units = da.attrs.get("units")
        if name in FORCING_VARIABLES:
            quantity = FORCING_VARIABLES[name][0]
            try:
                data = convert(da.data.astype(float), units, quantity, variable=src)
            except UnitError as e:
                problems.append(str(e))
                continue
            from ..units import QUANTITIES

            attrs = {
                "units": QUANTITIES[quantity].canonical,
                "source_name": src,
                "long_name": FORCING_VARIABLES[name][2],
            }
        else:
            attrs = stream_attrs(name, src)
            if units is None or normalise_unit(units) != normalise_unit(attrs["units"]):
                problems.append(
                    f"{src}: expected units {attrs['units']!r} for stream {name}, found {units!r}"
                )
                continue
            data = da.data.astype(float)
        out[name] = (da.dims, data, attrs)
    if problems:
        raise ValueError(
            f"{path}: cannot read as canonical forcing:\n  - " + "\n  - ".join(problems)
        )
    return out


def _valid_mask(grid: xr.Dataset, raw: xr.Dataset, valid, path: str) -> np.ndarray:
    """(lat, lon) bool: the given mask AND finite forcing at every step."""
    from ..forcing import FORCING_VARIABLES

    shape = (grid.sizes["lat"], grid.sizes["lon"])
    finite = xr.DataArray(np.ones(shape, bool), dims=("lat", "lon"))
    for name in FORCING_VARIABLES:
        if name in grid and {"lat", "lon"} <= set(grid[name].dims):
            finite = finite & np.isfinite(grid[name]).all("time")
    finite = np.asarray(
        finite.values if not hasattr(finite.data, "compute") else finite.data.compute(), bool
    )
    if valid is None:
        return finite
    if isinstance(valid, str):
        if valid not in raw.variables:
            raise ValueError(f"{path}: valid={valid!r} is not a variable of the file")
        mask = raw[valid]
        lat_dim = _dim(raw, _LAT_NAMES, "latitude", path)
        lon_dim = _dim(raw, _LON_NAMES, "longitude", path)
        mask = mask.rename({lat_dim: "lat", lon_dim: "lon"})
    elif isinstance(valid, xr.DataArray):
        mask = valid.rename(
            {
                d: n
                for d in valid.dims
                for n, names in (("lat", _LAT_NAMES), ("lon", _LON_NAMES))
                if str(d).lower() in names
            }
        )
    else:
        mask = xr.DataArray(np.asarray(valid), dims=("lat", "lon"))
    if set(mask.dims) != {"lat", "lon"}:
        raise ValueError(f"valid: expected a (lat, lon) mask, found dims {mask.dims}")
    mask = mask.transpose("lat", "lon")
    if mask.shape != shape:
        raise ValueError(f"valid: expected shape {shape} (lat, lon), found {mask.shape}")
    m = np.asarray(mask.values)
    m = np.where(np.isfinite(m.astype(float)), m, 0).astype(bool)
    dropped = int((m & ~finite).sum())
    if dropped:
        log.warning(
            "%s: %d pixels of the valid mask have non-finite forcing; excluded", path, dropped
        )
    return m & finite


def _step_starts(time: pd.DatetimeIndex, path: str) -> pd.DatetimeIndex:
    """Restamp CF time stamps to the start of their step (canonical convention).

    One stamp per consecutive calendar month (e.g. mid-month) becomes the first of the
    month; daily stamps at a fixed time of day (e.g. 12:00) become midnight.
    """
    if len(time) < 2:
        return time
    months = time.year * 12 + time.month
    if np.all(np.diff(months) == 1) and not np.all((time.day == 1) & (time == time.floor("D"))):
        log.info("%s: monthly time stamps moved to the first of each month", path)
        return to_ns(time.to_period("M").to_timestamp())
    floored = time.floor("D")
    if not np.array_equal(floored, time) and np.all(
        np.diff(floored.values) == np.timedelta64(1, "D")
    ):
        log.info("%s: daily time stamps moved to midnight", path)
        return to_ns(floored)
    return time


def _open_grid(path, variables, valid, chunks) -> _Grid:
    path = Path(path)
    raw = _open(path, chunks)
    spath = os.fspath(path)
    found = _resolve(raw, variables, spath)
    grid = _canonical_grid(raw, found, spath)
    if not np.issubdtype(grid["time"].dtype, np.datetime64):
        raise ValueError(
            f"{spath}: time: expected CF-decodable datetime64 values (standard "
            f"calendar), found dtype {grid['time'].dtype}"
        )
    grid = grid.assign_coords(time=_step_starts(to_ns(grid["time"].values), spath))
    step = infer_step(grid.indexes["time"], what=f"{spath}: time")
    mask = _valid_mask(grid, raw, valid, spath)
    ilat, ilon = np.nonzero(mask)
    log.info("%s: %d valid pixels of %d", spath, ilat.size, mask.size)
    classes = None
    cname = next((c for c in raw.variables if str(c).lower() in _CLASS_NAMES), None)
    if cname is not None:
        cda = raw[cname].rename(
            {
                _dim(raw, _LAT_NAMES, "latitude", spath): "lat",
                _dim(raw, _LON_NAMES, "longitude", spath): "lon",
            }
        )
        classes = np.asarray(cda.transpose("lat", "lon").values).astype(str)
    return _Grid(spath, grid, ilat, ilon, step, classes)


def _site_ids(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    return np.asarray([f"lat{a:.3f}_lon{b:.3f}" for a, b in zip(lat, lon, strict=True)], dtype=str)


def _pixels(g: _Grid, k0: int, k1: int) -> xr.Dataset:
    """Canonical (lazy) dataset of valid pixels ``k0:k1``."""
    ilat = xr.DataArray(g.ilat[k0:k1], dims="site")
    ilon = xr.DataArray(g.ilon[k0:k1], dims="site")
    lat = np.asarray(g.ds["lat"].values, float)[g.ilat[k0:k1]]
    lon = np.asarray(g.ds["lon"].values, float)[g.ilon[k0:k1]]
    lon = (lon + 180.0) % 360.0 - 180.0
    sites = _site_ids(lat, lon)
    n = k1 - k0
    out = xr.Dataset(coords={"site": sites, "time": g.ds["time"].values})
    for name, da in g.ds.data_vars.items():
        if "lat" in da.dims:
            v = da.isel(lat=ilat, lon=ilon).drop_vars(["lat", "lon"], errors="ignore")
        else:
            v = da.expand_dims(site=n)
        out[name] = v.transpose("site", "time").variable.copy(deep=False)
        out[name].attrs = dict(da.attrs)
    time = g.ds.indexes["time"]
    out["split_time"] = (
        ("site", "time"),
        np.broadcast_to(default_split_time(time), (n, len(time))).copy(),
        split_time_attrs(
            "DifferLand v1.0: first ceil(n_years/2) calendar years = 1 "
            "(training), the rest = 2 (validation)"
        ),
    )
    coords = {
        "lat": ("site", lat, {"units": "degrees_north", "long_name": "pixel-centre latitude"}),
        "lon": ("site", lon, {"units": "degrees_east", "long_name": "pixel-centre longitude"}),
    }
    if g.classes is not None:
        coords["vegetation_class"] = (
            "site",
            g.classes[g.ilat[k0:k1], g.ilon[k0:k1]],
            {"long_name": "vegetation class (IGBP code)"},
        )
    out = out.assign_coords(coords)
    out = add_env_features(out, {"abs_lat": np.abs(lat)}, {"abs_lat": "degrees"})
    return finish(
        out,
        step=g.step,
        source=g.path,
        attrs={"title": f"valid pixels of {os.path.basename(g.path)}"},
    )


def read_gridded(
    path: str | os.PathLike,
    *,
    variables: Mapping[str, str] | None = None,
    valid: str | np.ndarray | xr.DataArray | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    chunks: dict | str = "auto",
) -> xr.Dataset:
    """Read a gridded CF NetCDF / Zarr file as a lazy canonical dataset of valid pixels.

    Parameters
    ----------
    path : path-like
        ``.nc`` or ``.zarr`` with dims ``time`` and ``lat``/``latitude``,
        ``lon``/``longitude`` (1-D coordinates, degrees), CF-decodable time.
    variables : mapping of str to str, optional
        Canonical name -> file variable name; unlisted names are looked up in
        :data:`GRIDDED_ALIASES`. Forcing units are converted through
        :func:`differland_bayes.units.convert` (logged); stream units must be canonical.
        Time-only forcing (``co2``) is broadcast to every pixel.
    valid : str, array or DataArray, optional
        Land mask on (lat, lon): the name of a variable of the file, or an array; True /
        non-zero = use the pixel. Pixels whose forcing is not finite at every step are
        always excluded.
    block_size : int
        Pixels per dask chunk along ``site``.
    chunks : dict or "auto"
        Dask chunks used to open the file (``"auto"``: the stored chunks, enlarged to
        dask's default size).

    Returns
    -------
    xarray.Dataset
        Canonical dataset (``site x time``; dask-backed, call ``.load()`` or
        :func:`differland_bayes.dataset.write_dataset`) with sites
        ``"lat{lat:.3f}_lon{lon:.3f}"`` in row-major grid order, ``lat``/``lon``
        coordinates (lon in [-180, 180)), ``vegetation_class`` if the file has a
        ``vegetation_class``/``igbp`` variable, ``env`` = ``abs_lat`` (degrees), default
        DifferLand ``split_time`` and masks for any streams.
    """
    if block_size < 1:
        raise ValueError(f"block_size: expected a positive integer, found {block_size}")
    g = _open_grid(path, variables, valid, chunks)
    ds = _pixels(g, 0, g.ilat.size)
    _check_unique(ds, g.path)
    return ds.chunk({"site": block_size, "time": -1})


def iter_site_blocks(
    path: str | os.PathLike,
    block_size: int = DEFAULT_BLOCK_SIZE,
    *,
    variables: Mapping[str, str] | None = None,
    valid: str | np.ndarray | xr.DataArray | None = None,
    chunks: dict | str = "auto",
) -> Iterator[xr.Dataset]:
    """Yield the valid pixels of a gridded file as loaded canonical datasets.

    Parameters
    ----------
    path, variables, valid, chunks
        As for :func:`read_gridded`.
    block_size : int
        Largest number of pixels (sites) per block.

    Yields
    ------
    xarray.Dataset
        In-memory canonical datasets of at most ``block_size`` sites, in the order of
        :func:`read_gridded`; ``xr.concat(blocks, "site")`` equals its loaded result
        (``env`` and ``split_site`` included).
    """
    if block_size < 1:
        raise ValueError(f"block_size: expected a positive integer, found {block_size}")
    g = _open_grid(path, variables, valid, chunks)
    n = g.ilat.size
    for k0 in range(0, n, block_size):
        k1 = min(k0 + block_size, n)
        log.debug("%s: block of pixels %d..%d of %d", g.path, k0, k1, n)
        block = _pixels(g, k0, k1).load()
        _check_unique(block, g.path)
        yield block


def _check_unique(ds: xr.Dataset, path: str) -> None:
    ids = ds.indexes["site"]
    if ids.has_duplicates:
        raise ValueError(
            f"{path}: pixel site ids repeat ({ids[ids.duplicated()][:3].tolist()}); "
            "the grid is finer than the 0.001 degree of the ids"
        )
