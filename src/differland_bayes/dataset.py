"""The canonical multi-site dataset (``docs/data-format.md``): names, masks, I/O.

Readers build it, :mod:`differland_bayes.validate` checks it, the forcing builder and the
Bayesian model consume it. This module holds the names and units in one place and the
loss-free NetCDF / Zarr round trip.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import xarray as xr

from .io.atomic import atomic_path, check_can_write

__all__ = [
    "CLASS_PREDICTOR",
    "CONVENTIONS",
    "SPLIT_SITE_VALUES",
    "SPLIT_TIME",
    "STREAMS",
    "StreamInfo",
    "add_masks",
    "available_predictors",
    "check_predictors",
    "env_matrix",
    "observed_streams",
    "read_dataset",
    "write_dataset",
]

log = logging.getLogger(__name__)

CONVENTIONS = "differland-canonical-1"
#: the name of the vegetation class (its one-hot columns) in a predictor selection
CLASS_PREDICTOR = "vegetation_class"


class StreamInfo(NamedTuple):
    """An observation stream of the canonical dataset."""

    units: str
    long_name: str


STREAMS: dict[str, StreamInfo] = {
    "gpp": StreamInfo("gC m-2 d-1", "gross primary production"),
    "nee": StreamInfo("gC m-2 d-1", "net ecosystem exchange (positive = source)"),
    "reco": StreamInfo("gC m-2 d-1", "ecosystem respiration"),
    "et": StreamInfo("mm d-1", "evapotranspiration"),
    "lai": StreamInfo("m2 m-2", "leaf area index"),
    "biomass": StreamInfo("gC m-2", "live biomass"),
    "sif": StreamInfo("mW m-2 nm-1 sr-1", "solar-induced fluorescence"),
    "vod": StreamInfo("1", "vegetation optical depth"),
    "nbe": StreamInfo("gC m-2 d-1", "net biosphere exchange (NEE + fire)"),
    "fire": StreamInfo("gC m-2 d-1", "fire carbon emissions"),
    "ewt": StreamInfo("mm", "terrestrial water storage anomaly"),
    "swc": StreamInfo("%", "volumetric soil water content"),
}

#: values of ``split_time``
SPLIT_TIME = {"unused": 0, "train": 1, "validation": 2}
#: values of ``split_site``
SPLIT_SITE_VALUES = ("train", "validation", "test")


def observed_streams(ds: xr.Dataset) -> list[str]:
    """Names of the observation streams present in ``ds`` (in :data:`STREAMS` order)."""
    return [s for s in STREAMS if s in ds.data_vars]


def add_masks(ds: xr.Dataset) -> xr.Dataset:
    """Return a copy with ``<stream>_mask`` for every stream that lacks one.

    The mask is ``isfinite(value)``; an existing mask is narrowed to finite values (a NaN
    is never marked as observed).
    """
    out = ds.copy()
    for s in observed_streams(ds):
        finite = np.isfinite(ds[s])
        name = f"{s}_mask"
        mask = finite if name not in ds else (ds[name].astype(bool) & finite)
        out[name] = mask.astype(bool).assign_attrs(
            long_name=f"True where {s} was observed", flag_meanings="missing observed"
        )
    return out


def env_matrix(
    ds: xr.Dataset,
    *,
    one_hot: bool = True,
    classes: list[str] | None = None,
    predictors: Sequence[str] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Numeric predictor matrix ``(site, n)`` and its column names.

    Parameters
    ----------
    ds : xarray.Dataset
        Canonical dataset with ``env`` (site x feature) and optionally a
        ``vegetation_class`` coordinate.
    one_hot : bool
        Append one column per vegetation class (1 where the site has that class).
    classes : list of str, optional
        The classes to encode, in order (e.g. those of the training sites, so that new
        sites get the same columns); a site of another class gets zeros in every class
        column. Default: the classes present in ``ds``, sorted.
    predictors : sequence of str, optional
        Only these predictors: names of ``env`` features (columns in the order given)
        and :data:`CLASS_PREDICTOR` (``"vegetation_class"``) for the one-hot class
        columns, which always come last (``one_hot`` is then ignored). None or empty:
        every feature, then the class columns (the ``[data] predictors`` key of a fit;
        :func:`check_predictors`).

    Raises
    ------
    ValueError
        If a name of ``predictors`` is not a feature of ``ds`` (or is
        ``"vegetation_class"`` without that coordinate).
    """
    cols: list[np.ndarray] = []
    names: list[str] = []
    env = ds["env"].transpose("site", "feature") if "env" in ds else None
    features = [str(f) for f in env["feature"].values] if env is not None else []
    if predictors:
        check_predictors(ds, predictors)
        wanted = [p for p in predictors if p != CLASS_PREDICTOR]
        one_hot = CLASS_PREDICTOR in predictors
    else:
        wanted = features
    if env is not None and wanted:
        cols.append(np.asarray(env.sel(feature=wanted).values, float))
        names += list(wanted)
    if one_hot and "vegetation_class" in ds.coords:
        values = np.asarray(ds["vegetation_class"].values).astype(str)
        if classes is None:
            classes = list(pd.Categorical(values).categories)
        unknown = sorted(set(values) - set(classes))
        if unknown:
            log.warning(
                "vegetation classes %s not among %s: encoded as all zeros", unknown, classes
            )
        for c in classes:
            cols.append((values == c).astype(float)[:, None])
            names.append(f"vegetation_class={c}")
    if not cols:
        return np.zeros((ds.sizes.get("site", 0), 0)), []
    return np.concatenate(cols, axis=1), names


def available_predictors(ds: xr.Dataset) -> list[str]:
    """Names a predictor selection may use: the ``env`` features and ``vegetation_class``."""
    names = [str(f) for f in ds["feature"].values] if "env" in ds else []
    return names + ([CLASS_PREDICTOR] if "vegetation_class" in ds.coords else [])


def check_predictors(ds: xr.Dataset, predictors: Sequence[str], *, key: str = "predictors") -> None:
    """Check that every name of a predictor selection exists in ``ds``.

    Parameters
    ----------
    ds : xarray.Dataset
        Canonical dataset.
    predictors : sequence of str
        Names of ``env`` features and :data:`CLASS_PREDICTOR`; empty = all.
    key : str
        Name of the selection in the message (e.g. ``"data.predictors"``).

    Raises
    ------
    ValueError
        Naming ``key``, the names the dataset offers and the unknown ones.
    """
    have = available_predictors(ds)
    unknown = [p for p in predictors if p not in have]
    if unknown:
        raise ValueError(
            f"{key}: expected names of the dataset's predictors {have} (env features, and "
            f"{CLASS_PREDICTOR!r} for the one-hot vegetation classes), found unknown {unknown}"
        )


def _engine_for(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".zarr":
        return "zarr"
    if suffix in (".nc", ".nc4", ".netcdf"):
        return "netcdf"
    raise ValueError(f"{path}: expected a .nc or .zarr path, found suffix {suffix!r}")


def write_dataset(ds: xr.Dataset, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a canonical dataset to NetCDF (``.nc``) or Zarr (``.zarr``), atomically.

    String coordinates and bool masks survive the round trip (:func:`read_dataset`).
    Refuses to replace an existing path unless ``overwrite``.
    """
    path = Path(path)
    engine = _engine_for(path)
    check_can_write(path, overwrite=overwrite)
    out = ds.copy()
    out.attrs.setdefault("conventions", CONVENTIONS)
    if engine == "netcdf":
        with atomic_path(path, overwrite=overwrite) as tmp:
            out.to_netcdf(tmp, engine="netcdf4")
    else:
        import shutil
        import tempfile

        tmp_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        try:
            tmp = tmp_dir / path.name
            out.to_zarr(tmp, mode="w", consolidated=False)
            if path.exists():
                shutil.rmtree(path)
            os.replace(tmp, path)
        finally:
            shutil.rmtree(tmp_dir, ignore_errors=True)
    log.info("wrote %s", path)
    return path


def read_dataset(path: str | os.PathLike, *, chunks: dict | None = None) -> xr.Dataset:
    """Read a dataset written by :func:`write_dataset` (lazily if ``chunks`` is given)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    engine = _engine_for(path)
    if engine == "netcdf":
        ds = xr.open_dataset(path, engine="netcdf4", chunks=chunks)
    else:
        ds = xr.open_zarr(path, chunks=chunks, consolidated=False)
    if chunks is None:
        ds = ds.load()
        ds.close()
    for name in list(ds.data_vars):
        if name.endswith("_mask") and ds[name].dtype != bool:
            ds[name] = ds[name].astype(bool)
    return ds
