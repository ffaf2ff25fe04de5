"""Maps of per-site results, for runs whose sites have coordinates.

A site map is a scatter of the sites at their longitude and latitude (plain matplotlib,
no map projection or coastlines: the axes are degrees east and north), coloured by a
per-site quantity:

* :func:`site_parameter_summary` — the posterior median of each site parameter and the
  width of its central 90 % interval (physical units);
* :func:`site_r2` — the predictive R² of each stream at each site (all periods);

:func:`plot_site_maps` draws one panel per quantity, and :func:`maps_section` is the
report section (:data:`~.report.REPORT_SECTIONS`), which says so and draws nothing when
the sites have no coordinates.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from .diagnostics import site_scores
from .html import Section

__all__ = [
    "has_coordinates",
    "maps_section",
    "plot_site_maps",
    "site_parameter_summary",
    "site_r2",
]

#: site coordinate names tried, in order: (longitude, latitude)
COORDINATE_NAMES: tuple[tuple[str, str], ...] = (("lon", "lat"), ("longitude", "latitude"))
#: parameters mapped by the report (those varying most across sites first)
N_MAPPED_PARAMETERS = 4


def _coordinates(dt: xr.DataTree) -> tuple[np.ndarray, np.ndarray] | None:
    coords = dt["posterior"].coords
    for lon, lat in COORDINATE_NAMES:
        if lon in coords and lat in coords:
            x = np.asarray(coords[lon].values, float)
            y = np.asarray(coords[lat].values, float)
            if np.isfinite(x).any() and np.isfinite(y).any():
                return x, y
    return None


def has_coordinates(dt: xr.DataTree) -> bool:
    """Whether the run's sites have finite longitude and latitude (``lon``/``lat``)."""
    return _coordinates(dt) is not None


def site_parameter_summary(dt: xr.DataTree, prob: float = 0.9) -> pd.DataFrame:
    """Posterior median and central-interval width of every site parameter.

    Parameters
    ----------
    dt : xarray.DataTree
        DataTree of a run (:func:`~.datatree.to_datatree`).
    prob : float
        Probability mass of the interval, in ``(0, 1)``.

    Returns
    -------
    pandas.DataFrame
        Columns ``site, parameter, units, median, width, lon, lat`` (coordinates NaN when
        the sites have none); ``median`` and ``width`` in the parameter's units.
    """
    if not 0.0 < prob < 1.0:
        raise ValueError(f"prob: expected a number in (0, 1), found {prob!r}")
    theta = dt["posterior"]["parameters"]
    draws = [d for d in theta.dims if d not in ("site", "parameter")]
    lo, med, hi = (
        theta.quantile(q, dim=draws).transpose("parameter", "site").values
        for q in ((1 - prob) / 2, 0.5, (1 + prob) / 2)
    )  # (parameter, site)
    xy = _coordinates(dt)
    n_par, n_site = med.shape
    nan = np.full(n_site, np.nan)
    return pd.DataFrame({
        "site": np.tile(np.asarray(theta["site"].values).astype(str), n_par),
        "parameter": np.repeat(np.asarray(theta["parameter"].values).astype(str), n_site),
        "units": np.repeat(np.asarray(theta["parameter_units"].values).astype(str), n_site),
        "median": med.ravel().astype(float),
        "width": (hi - lo).ravel().astype(float),
        "lon": np.tile(xy[0] if xy else nan, n_par),
        "lat": np.tile(xy[1] if xy else nan, n_par),
    })  # fmt: skip


def site_r2(dt: xr.DataTree, streams: Sequence[str] | None = None) -> pd.DataFrame:
    """Predictive R² of each stream at each site, over all its observed steps.

    Returns
    -------
    pandas.DataFrame
        Columns ``stream, site, r2, n, lon, lat``.
    """
    table = site_scores(dt, streams)
    table = table[table["period"] == "all"][["stream", "site", "r2", "n"]].copy()
    xy = _coordinates(dt)
    sites = list(np.asarray(dt["posterior"]["site"].values).astype(str))
    idx = [sites.index(s) for s in table["site"]]
    table["lon"] = xy[0][idx] if xy else np.nan
    table["lat"] = xy[1][idx] if xy else np.nan
    return table.reset_index(drop=True)


def plot_site_maps(
    panels: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]], *, ncols: int = 2
) -> Figure:
    """Scatter maps of per-site values.

    Parameters
    ----------
    panels : sequence of (title, lon, lat, values)
        One panel each: a title that names the quantity with its units, the sites'
        longitudes and latitudes (degrees) and the values colouring them.
    ncols : int
        Panels per row.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not panels:
        raise ValueError("panels: expected at least one (title, lon, lat, values) panel")
    n = len(panels)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig = Figure(figsize=(5.2 * ncols, 3.0 * nrows), layout="constrained")
    for k, (title, lon, lat, values) in enumerate(panels):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        ok = np.isfinite(lon) & np.isfinite(lat) & np.isfinite(values)
        sc = ax.scatter(lon[ok], lat[ok], c=values[ok], s=18, cmap="viridis",
                        edgecolors="k", linewidths=0.3)  # fmt: skip
        fig.colorbar(sc, ax=ax, shrink=0.9)
        ax.set_xlim(-180, 180)
        ax.set_ylim(-60, 80)
        ax.set_xlabel("longitude (degrees east)")
        ax.set_ylabel("latitude (degrees north)")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    return fig


def maps_section(dt: xr.DataTree) -> Section:
    """Report section: parameters and predictive R² of every site on a map."""
    title = "Sites on a map"
    if not has_coordinates(dt):
        return Section(title, "The sites have no coordinates (lon, lat): no maps.")
    params = site_parameter_summary(dt)
    spread = params.groupby("parameter")["median"].agg(lambda v: np.std(np.log(np.abs(v) + 1e-12)))
    top = list(spread.sort_values(ascending=False).index[:N_MAPPED_PARAMETERS])
    panels = []
    for p in top:
        rows = params[params["parameter"] == p]
        units = rows["units"].iloc[0]
        lon, lat = rows["lon"].to_numpy(), rows["lat"].to_numpy()
        panels.append((f"{p}: posterior median ({units})", lon, lat, rows["median"].to_numpy()))
        panels.append((f"{p}: 90 % interval width ({units})", lon, lat, rows["width"].to_numpy()))
    r2 = site_r2(dt)
    for s, rows in r2.groupby("stream", sort=False):
        panels.append((f"{s}: predictive R² per site (1)", rows["lon"].to_numpy(),
                       rows["lat"].to_numpy(), rows["r2"].to_numpy()))  # fmt: skip
    text = (
        "Each dot is a site at its longitude and latitude (degrees; no projection). "
        f"Parameters: the {len(top)} whose posterior medians vary most across sites (on a "
        "log scale), with the width of their central 90 % posterior intervals; then the "
        "predictive R² of each stream at each site over all its observed steps."
    )
    return Section(title, text, figures={"site maps": plot_site_maps(panels)},
                   tables={"site_parameters": params, "site_r2": r2})  # fmt: skip
