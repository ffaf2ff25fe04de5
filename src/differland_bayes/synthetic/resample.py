"""Forcing resampled from a real canonical dataset, by whole calendar years.

Each synthetic site picks one source site (uniformly, with replacement) and, for each of
its years, one complete calendar year of that site's forcing (uniformly, with
replacement): seasonal cycles, weather and the relation between the variables are those
of the real site, the sequence of years is new. CO2 is replaced by the synthetic global
record (:func:`~differland_bayes.synthetic.climate.co2_record`) so that it keeps rising.
Latitude and longitude, and where present the vegetation class and the ``elevation`` and
``forest_age`` predictors, are the source site's. Negative radiation, VPD or
precipitation (reanalysis artefacts) become 0, and ``t_min`` / ``t_max`` are swapped
where reversed, so that the process model accepts every resampled year.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..forcing import FORCING_VARIABLES, monthly_means
from ..units import convert
from .climate import TimeAxis, co2_record
from .rng import SiteRandom

__all__ = ["ForcingSource"]

log = logging.getLogger(__name__)

RESAMPLED = ("t_min", "t_max", "swrad", "vpd", "precip")  #: CO2 is replaced


class ForcingSource:
    """Complete calendar years of forcing of a canonical dataset, ready to resample.

    Parameters
    ----------
    source : xarray.Dataset or path-like
        Canonical dataset (``docs/data-format.md``) or a ``.nc`` / ``.zarr`` path to one,
        with forcing on ``site x time`` and a ``lat`` coordinate.
    daily : bool
        The step the world needs: daily sources are aggregated to calendar months when
        False; a monthly source for a daily world is an error.

    Raises
    ------
    ValueError
        If the source lacks what is needed (every problem listed) or has no complete
        calendar year of finite forcing.
    """

    def __init__(self, source: xr.Dataset | str | os.PathLike, *, daily: bool):
        if not isinstance(source, xr.Dataset):
            from ..dataset import read_dataset

            self.description = str(Path(source))
            source = read_dataset(source)
        else:
            self.description = str(source.attrs.get("title", source.attrs.get("source", "")))
        self.description = self.description or "an in-memory dataset"
        problems = []
        for dim in ("site", "time"):
            if dim not in source.dims:
                problems.append(f"missing dimension {dim!r}")
        if "lat" not in source.variables:
            problems.append("missing the 'lat' coordinate")
        missing = [v for v in RESAMPLED if v not in source.data_vars]
        if missing:
            problems.append(f"missing forcing variables {missing}")
        if problems:
            raise ValueError("cannot resample forcing from the source: " + "; ".join(problems))
        time = pd.DatetimeIndex(source["time"].values)
        steps = np.diff(time.values).astype("timedelta64[D]").astype(int)
        is_daily = bool(len(steps) and np.all(steps == 1))
        if daily and not is_daily:
            raise ValueError("the daily model needs a daily forcing source; found monthly steps")
        if not daily and is_daily:
            source = monthly_means(source[list(RESAMPLED)].assign_coords(lat=source["lat"]))
            time = pd.DatetimeIndex(source["time"].values)
        self.daily = daily

        self.data = {}
        for v in RESAMPLED:
            da = source[v].transpose("site", "time")
            quantity = FORCING_VARIABLES[v][0]
            self.data[v] = convert(
                np.asarray(da.values, float), da.attrs.get("units"), quantity, variable=v
            )
        for v in ("swrad", "vpd", "precip"):  # reanalysis artefacts such as -1e-6 mm d-1
            negative = self.data[v] < 0
            if negative.any():
                log.info("forcing source: %d negative %s values set to 0", negative.sum(), v)
                self.data[v] = np.where(negative, 0.0, self.data[v])
        swapped = self.data["t_min"] > self.data["t_max"]
        if swapped.any():
            log.info("forcing source: t_min > t_max at %d steps; swapped", swapped.sum())
            t_min, t_max = self.data["t_min"], self.data["t_max"]
            self.data["t_min"], self.data["t_max"] = (
                np.minimum(t_min, t_max),
                np.maximum(t_min, t_max),
            )
        self.sites = np.asarray(source["site"].values).astype(str)
        self.lat = np.asarray(source["lat"].values, float)
        self.lon = np.asarray(source["lon"].values, float) if "lon" in source.variables else None
        self.vegetation_class = (
            np.asarray(source["vegetation_class"].values).astype(str)
            if "vegetation_class" in source.variables
            else None
        )
        self.features = {}
        if "env" in source.data_vars and "feature" in source.dims:
            for f in ("elevation", "forest_age"):
                if f in source["feature"].values:
                    self.features[f] = np.asarray(source["env"].sel(feature=f).values, float)
        self._index_years(time)

    def _index_years(self, time: pd.DatetimeIndex) -> None:
        """Start and length of each complete, finite calendar year of each source site."""
        finite = np.all([np.isfinite(a) for a in self.data.values()], axis=0)  # (site, time)
        starts, lengths = [], []
        for year in np.unique(time.year):
            idx = np.flatnonzero(time.year == year)
            expected = (
                (366 if pd.Timestamp(year=year, month=1, day=1).is_leap_year else 365)
                if self.daily
                else 12
            )
            if len(idx) != expected or np.any(np.diff(idx) != 1):
                continue
            starts.append(idx[0])
            lengths.append((len(idx), finite[:, idx].all(axis=1)))
        n_src = len(self.sites)
        self.n_years = np.zeros(n_src, int)
        self.year_start = np.zeros((n_src, max(len(starts), 1)), int)
        self.year_length = np.ones((n_src, max(len(starts), 1)), int)
        for start, (length, ok) in zip(starts, lengths, strict=True):
            rows = np.flatnonzero(ok)
            self.year_start[rows, self.n_years[rows]] = start
            self.year_length[rows, self.n_years[rows]] = length
            self.n_years[rows] += 1
        self.usable = np.flatnonzero(self.n_years > 0)
        if not len(self.usable):
            raise ValueError(
                "cannot resample forcing from the source: no site has a complete calendar "
                "year of finite forcing"
            )
        log.info(
            "forcing source %s: %d of %d sites with complete years (%d site-years)",
            self.description,
            len(self.usable),
            n_src,
            int(self.n_years.sum()),
        )

    def resample(
        self, rand: SiteRandom, sites: np.ndarray, axis: TimeAxis
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Resample the forcing of synthetic sites ``sites`` on ``axis``.

        Returns
        -------
        tuple
            ``({variable: (site, T) float64}, source index (site,))``; variables in
            canonical units, CO2 from the synthetic global record.
        """
        first = int(axis.year[0])
        n_years = int(axis.year[-1]) - first + 1
        u = rand.uniform("resample", sites, (1 + n_years,))
        j = self.usable[np.minimum((u[:, 0] * len(self.usable)).astype(int), len(self.usable) - 1)]
        k = np.minimum((u[:, 1:] * self.n_years[j, None]).astype(int), self.n_years[j, None] - 1)
        start = np.take_along_axis(self.year_start[j], k, axis=1)  # (site, years)
        length = np.take_along_axis(self.year_length[j], k, axis=1)
        ty = axis.year - first  # target year of each step
        offset = np.arange(len(axis)) - np.searchsorted(axis.year, axis.year)
        idx = start[:, ty] + np.minimum(offset[None, :], length[:, ty] - 1)
        out = {v: a[j[:, None], idx] for v, a in self.data.items()}
        out["co2"] = np.broadcast_to(co2_record(axis), idx.shape).copy()
        return out, j
