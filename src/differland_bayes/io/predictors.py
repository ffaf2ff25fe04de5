"""Environment predictors (``env``, ``site x feature``): from a CSV table or the forcing.

``env`` holds numeric predictors only, each with its unit in the ``feature_units``
coordinate; a categorical vegetation class becomes the ``vegetation_class`` coordinate.

Units of CSV columns come from the ``units`` mapping or, if the table has one, from a
units row: the first data row whose key cell reads ``units`` (a second header row)::

    site,elevation,map,mat,igbp
    units,m,mm yr-1,degC,
    US-Var,129,559,15.8,GRA

A numeric column without a unit is an error (a predictor of unknown unit cannot be
compared across datasets).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from ..units import convert
from ._canonical import SITE_TIME_VALID, infer_step
from .lai_climatology import LAI_PREDICTORS, annual_harmonic, lai_predictors

__all__ = [
    "DERIVED_PREDICTORS",
    "HARGREAVES_COEFFICIENT",
    "MJ_TO_MM_EVAPORATED",
    "add_env_features",
    "derive_predictors",
    "read_predictors_csv",
]

log = logging.getLogger(__name__)

#: predictors :func:`derive_predictors` computes: name -> (units, description)
DERIVED_PREDICTORS: dict[str, tuple[str, str]] = {
    "mat": ("degC", "mean annual temperature, mean of (t_min + t_max) / 2"),
    "map": ("mm yr-1", "mean annual precipitation, mean precip x 365.25"),
    "t_seasonality": ("degC", "standard deviation of the 12 monthly mean temperatures"),
    "p_seasonality": ("mm d-1", "standard deviation of the 12 monthly mean precipitation rates"),
    "aridity": ("1", "aridity index map / annual Hargreaves PET (higher = wetter)"),
    "t_cos": ("degC", "cosine coefficient of the annual harmonic of monthly mean temperature"),
    "t_sin": ("degC", "sine coefficient of the annual harmonic of monthly mean temperature"),
    "p_cos": ("mm d-1", "cosine coefficient of the annual harmonic of monthly precipitation"),
    "p_sin": ("mm d-1", "sine coefficient of the annual harmonic of monthly precipitation"),
    **LAI_PREDICTORS,
}
#: Hargreaves (1975) radiation-based reference evapotranspiration coefficient
HARGREAVES_COEFFICIENT = 0.0135
#: mm of water evaporated by 1 MJ m-2 (1 / latent heat of vaporisation, 2.45 MJ kg-1)
MJ_TO_MM_EVAPORATED = 0.408
_CATEGORICAL = ("vegetation_class", "igbp")


def add_env_features(
    ds: xr.Dataset, values: Mapping[str, np.ndarray], units: Mapping[str, str]
) -> xr.Dataset:
    """Return a copy of ``ds`` with numeric predictors added to (or replaced in) ``env``.

    Parameters
    ----------
    ds : xarray.Dataset
        Canonical dataset with a ``site`` dimension.
    values : mapping of str to array of shape (site,)
        Predictor values in site order.
    units : mapping of str to str
        Units of every predictor in ``values``.

    Returns
    -------
    xarray.Dataset
        ``env`` (float, ``site x feature``) with ``feature_units``; a feature that was
        already there is replaced (logged).
    """
    names = list(values)
    missing_units = [n for n in names if n not in units]
    if missing_units:
        raise ValueError(f"env features {missing_units}: no units given")
    n_site = ds.sizes["site"]
    cols = []
    for n in names:
        v = np.asarray(values[n], float)
        if v.shape != (n_site,):
            raise ValueError(f"env feature {n!r}: expected shape ({n_site},), found {v.shape}")
        cols.append(v)
    new = xr.DataArray(
        np.stack(cols, axis=1) if cols else np.zeros((n_site, 0)),
        dims=("site", "feature"),
        coords={
            "site": ds["site"].values,
            "feature": np.asarray(names, dtype=str),
            "feature_units": ("feature", np.asarray([units[n] for n in names], dtype=str)),
        },
    )
    if "env" in ds:
        old = ds["env"].transpose("site", "feature")
        replaced = [str(f) for f in old["feature"].values if str(f) in names]
        if replaced:
            log.info("env: replacing features %s", replaced)
        keep = [str(f) for f in old["feature"].values if str(f) not in names]
        old = old.sel(feature=keep)
        env = xr.concat(
            [old.drop_vars([c for c in old.coords if c not in new.coords]), new], dim="feature"
        )
    else:
        env = new
    out = ds.drop_vars(["env", "feature", "feature_units"], errors="ignore")
    env = env.assign_coords(
        feature=np.asarray([str(f) for f in env["feature"].values], dtype=str),
        feature_units=("feature", np.asarray([str(u) for u in env["feature_units"].values])),
    )
    out["env"] = env.astype(float).assign_attrs(
        long_name="environment predictors (units in feature_units)"
    )
    out["feature_units"].attrs = {"long_name": "units of each environment predictor"}
    return out


def _site_ids(ds: xr.Dataset) -> list[str]:
    return [str(s) for s in ds["site"].values]


def read_predictors_csv(
    ds: xr.Dataset,
    path: str | os.PathLike,
    *,
    key: str = "site",
    units: Mapping[str, str] | None = None,
) -> xr.Dataset:
    """Merge a table of site predictors into ``env`` (and ``vegetation_class``).

    Parameters
    ----------
    ds : xarray.Dataset
        Canonical dataset with a ``site`` coordinate.
    path : path-like
        CSV file, one row per site (extra rows are ignored).
    key : str
        Column with the site ids (matched case-insensitively; ``site_id`` is accepted
        when ``key`` is the default ``"site"``).
    units : mapping of str to str, optional
        Units of the numeric columns; overrides a units row (see the module docstring).

    Returns
    -------
    xarray.Dataset
        Copy of ``ds`` with every numeric column added to ``env`` under its column name
        (existing features of that name replaced) and a column ``vegetation_class`` or
        ``igbp`` (any case) as the ``vegetation_class`` coordinate. Other text columns are
        skipped (logged).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the key column is missing, ids repeat, sites of ``ds`` are missing from the
        table (all listed), or a numeric column has no unit.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: predictor table not found")
    table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    table.columns = [str(c).strip() for c in table.columns]
    lower = {c.lower(): c for c in table.columns}
    candidates = [key.lower()] + (["site_id"] if key == "site" else [])
    key_col = next((lower[c] for c in candidates if c in lower), None)
    if key_col is None:
        raise ValueError(
            f"{path}: no key column {key!r} (case-insensitive); found columns {list(table.columns)}"
        )
    ids = table[key_col].str.strip()
    row_units: dict[str, str] = {}
    is_units = ids.str.lower() == "units"
    if is_units.any():
        urow = table[is_units].iloc[0]
        row_units = {c: str(urow[c]).strip() for c in table.columns if c != key_col}
        table, ids = table[~is_units], ids[~is_units]
    dup = sorted(set(ids[ids.duplicated()]))
    if dup:
        raise ValueError(f"{path}: site ids repeat in column {key_col!r}: {dup}")
    table = table.set_axis(ids.values, axis=0)
    sites = _site_ids(ds)
    missing = [s for s in sites if s not in table.index]
    if missing:
        raise ValueError(
            f"{path}: {len(missing)} of {len(sites)} sites of the dataset are missing from "
            f"column {key_col!r}: {missing}"
        )
    extra = len(table) - len(sites)
    if extra:
        log.debug("%s: ignoring %d rows for sites not in the dataset", path, extra)
    table = table.loc[sites]
    values: dict[str, np.ndarray] = {}
    feature_units: dict[str, str] = {}
    no_units: list[str] = []
    out = ds
    for col in table.columns:
        if col == key_col:
            continue
        text = table[col].str.strip()
        if col.lower() in _CATEGORICAL:
            classes = np.asarray(text.values, dtype=str)
            out = out.assign_coords(
                vegetation_class=(
                    "site",
                    classes,
                    {"long_name": "vegetation class (IGBP code)", "source_name": col},
                )
            )
            continue
        numbers = pd.to_numeric(text.replace("", np.nan), errors="coerce")
        if (numbers.isna() & (text != "") & ~text.str.lower().isin(["nan", "na"])).any():
            log.info("%s: skipping non-numeric column %r", path, col)
            continue
        unit = (units or {}).get(col) or row_units.get(col)
        if not unit:
            no_units.append(col)
            continue
        if numbers.isna().any():
            log.warning(
                "%s: column %r is empty for sites %s (NaN in env)",
                path,
                col,
                list(numbers.index[numbers.isna()]),
            )
        values[col] = numbers.to_numpy(float)
        feature_units[col] = unit
    if no_units:
        raise ValueError(
            f"{path}: numeric columns {no_units} have no units; pass units={{column: unit}} "
            f"or add a units row (first cell 'units') below the header"
        )
    return add_env_features(out, values, feature_units)


def _forcing(ds: xr.Dataset, name: str) -> xr.DataArray:
    from ..forcing import FORCING_VARIABLES

    if name not in ds:
        raise ValueError(f"derive_predictors: forcing variable {name!r} is missing")
    quantity = FORCING_VARIABLES[name][0]
    da = ds[name]
    return da.copy(
        data=convert(np.asarray(da.values, float), da.attrs.get("units"), quantity, variable=name)
    )


def derive_predictors(
    ds: xr.Dataset,
    which: Sequence[str] = ("mat", "map", "t_seasonality", "p_seasonality", "aridity"),
) -> xr.Dataset:
    """Compute climate predictors from the forcing and add them to ``env``.

    Parameters
    ----------
    ds : xarray.Dataset
        Canonical dataset (daily or monthly) with ``t_min``, ``t_max``, ``precip`` and,
        for ``aridity``, ``swrad``; for the ``lai_*`` predictors, ``lai``. Only each
        site's record is used for the climate predictors (``site_time_valid`` where
        present; NaN steps are skipped); every finite ``lai`` value counts.
    which : sequence of str
        Any of :data:`DERIVED_PREDICTORS`.

    Returns
    -------
    xarray.Dataset
        Copy with the predictors in ``env`` (replacing features of the same name):

        * ``mat`` (degC): time mean of ``T = (t_min + t_max) / 2``;
        * ``map`` (mm yr-1): time mean of ``precip`` (mm d-1) x 365.25;
        * ``t_seasonality`` (degC), ``p_seasonality`` (mm d-1): population standard
          deviation of the 12 calendar-month means of ``T`` and ``precip`` (NaN if a
          calendar month has no data);
        * ``aridity`` (1): ``map / (365.25 x mean PET)`` with the radiation-based
          Hargreaves (1975) reference evapotranspiration
          ``PET = 0.0135 x 0.408 x swrad x (T + 17.8)`` (mm d-1; swrad in
          MJ m-2 d-1, 0.408 mm per MJ m-2; negative values set to 0). Below 0.65 is
          dryland in the UNEP convention;
        * ``t_cos``, ``t_sin`` (degC), ``p_cos``, ``p_sin`` (mm d-1): timing of the
          seasonal cycle of ``T`` and ``precip``, the first annual harmonic of the 12
          calendar-month means ``c_m``: ``(2/12) sum_m c_m cos(2 pi (m - 0.5) / 12)``
          and the same with ``sin``. Their angle ``atan2(sin, cos)`` is the time of the
          seasonal maximum (rad from 1 January, a turn per year; about pi for a
          northern temperature cycle, 0 for a southern one) and their length its
          half-amplitude: what a network needs to place the phenology phases
          (``[model] circular_phases``) in either hemisphere;
        * ``lai_mean``, ``lai_amplitude``, ``lai_cos``, ``lai_sin`` (m2 m-2): level,
          seasonality and timing of the calendar-month LAI climatology
          (:mod:`~differland_bayes.io.lai_climatology`).

        Monthly steps are weighted by their days in the month.
    """
    unknown = [w for w in which if w not in DERIVED_PREDICTORS]
    if unknown:
        raise ValueError(
            f"derive_predictors: unknown predictors {unknown}; expected some of "
            f"{list(DERIVED_PREDICTORS)}"
        )
    time = pd.DatetimeIndex(ds["time"].values)
    step = infer_step(time)
    w = np.asarray(time.days_in_month, float) if step == "monthly" else np.ones(len(time))
    weight = xr.DataArray(w, dims="time", coords={"time": ds["time"].values})
    valid = ds[SITE_TIME_VALID].astype(bool) if SITE_TIME_VALID in ds else True

    def wmean(x: xr.DataArray, dim_weight: xr.DataArray = weight) -> xr.DataArray:
        ok = np.isfinite(x) & valid
        ww = dim_weight.where(ok, 0.0)
        return (x.where(ok, 0.0) * ww).sum("time") / ww.sum("time").where(ww.sum("time") > 0)

    climatologies: dict[str, xr.DataArray] = {}

    def monthly(variable: str) -> xr.DataArray:
        """Calendar-month means of ``t_mean`` or ``precip`` (computed once each)."""
        if variable not in climatologies:
            x = t_mean if variable == "t" else precip
            months = []
            for m in range(1, 13):
                sel = time.month == m
                months.append(wmean(x.isel(time=sel), weight.isel(time=sel)))
            climatologies[variable] = xr.concat(months, dim="month")
        return climatologies[variable]

    t_mean = None
    if {"mat", "t_seasonality", "aridity", "t_cos", "t_sin"} & set(which):
        t_mean = 0.5 * (_forcing(ds, "t_min") + _forcing(ds, "t_max"))
    p_names = {"map", "p_seasonality", "aridity", "p_cos", "p_sin"}
    precip = _forcing(ds, "precip") if p_names & set(which) else None
    values: dict[str, xr.DataArray] = {}
    for name in which:
        if name == "mat":
            values[name] = wmean(t_mean)
        elif name == "map":
            values[name] = wmean(precip) * 365.25
        elif name in ("t_seasonality", "p_seasonality"):
            values[name] = monthly(name[0]).std("month", skipna=False)
        elif name in ("t_cos", "t_sin", "p_cos", "p_sin"):
            clim = monthly(name[0]).transpose(..., "month")
            harmonic = annual_harmonic(clim.values)[0 if name.endswith("cos") else 1]
            values[name] = xr.DataArray(harmonic, dims=clim.dims[:-1])
        elif name == "aridity":
            swrad = _forcing(ds, "swrad")
            pet = HARGREAVES_COEFFICIENT * MJ_TO_MM_EVAPORATED * swrad * (t_mean + 17.8)
            pet = pet.clip(min=0.0)
            values[name] = wmean(precip) / wmean(pet)
    lai_names = [n for n in which if n in LAI_PREDICTORS]
    if lai_names:
        values.update(
            {n: xr.DataArray(v, dims="site") for n, v in lai_predictors(ds, lai_names).items()}
        )
    arrays = {}
    for name in which:
        v = values[name]
        if "site" in ds.dims:
            arr = np.asarray(v.transpose("site").values, float)
        else:
            raise ValueError("derive_predictors: expected a dataset with a 'site' dimension")
        bad = [str(s) for s, x in zip(ds["site"].values, arr, strict=True) if not np.isfinite(x)]
        if bad:
            log.warning("derive_predictors: %s is NaN at sites %s (not enough data)", name, bad)
        arrays[name] = arr
    return add_env_features(ds, arrays, {n: DERIVED_PREDICTORS[n][0] for n in arrays})
