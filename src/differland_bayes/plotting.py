"""Quick-look figures of simulated datasets (matplotlib, no display needed).

Figures are built with :class:`matplotlib.figure.Figure` directly (Agg canvas), so no
GUI backend or ``pyplot`` global state is involved and they work on headless machines.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from .io.atomic import atomic_path

__all__ = ["plot_simulation"]

log = logging.getLogger(__name__)

FIGURE_SIZE = (11.0, 7.5)  #: inches
DPI = 120  #: dots per inch of the saved image
LEGEND_HEADROOM = 0.25  #: extra room above the data for legends, fraction of the data range

#: carbon pools drawn on the log-scale panel: (output variable, legend label)
CARBON_POOLS = (
    ("next_labile_pool", "labile"),
    ("next_foliar_pool", "foliar"),
    ("next_root_pool", "root"),
    ("next_wood_pool", "wood"),
    ("next_litter_pool", "litter"),
    ("next_som_pool", "SOM"),
)
#: water pools, whichever the model has: (output variable, legend label)
WATER_POOLS = (
    ("next_water_pool", "soil water"),
    ("next_paw_pool", "plant-available water"),
    ("next_puw_pool", "plant-unavailable water"),
)


def _units(ds: xr.Dataset, name: str) -> str:
    return str(ds[name].attrs.get("units", "?"))


def _format_time_axis(ax: Axes) -> None:
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def _plot_fluxes(ax: Axes, ds: xr.Dataset, time: np.ndarray) -> None:
    gpp = ds["gpp"].values
    nee = ds["nee"].values
    ax.plot(time, gpp, color="tab:green", label="GPP")
    ax.plot(time, gpp + nee, color="tab:brown", label="RECO = GPP + NEE")
    ax.plot(time, nee, color="tab:blue", label="NEE (positive = source)")
    ax.axhline(0.0, color="0.5", lw=0.8)
    low, high = ax.get_ylim()
    ax.set_ylim(low, high + LEGEND_HEADROOM * (high - low))  # room for the legend
    ax.set_title("Carbon fluxes")
    ax.set_ylabel(f"flux ({_units(ds, 'gpp')})")
    ax.legend(loc="upper center", fontsize="small", frameon=False, ncols=3)


def _plot_lai(ax: Axes, ds: xr.Dataset, time: np.ndarray) -> None:
    ax.plot(time, ds["lai"].values, color="tab:green")
    ax.set_ylim(bottom=0.0)
    ax.set_title("Leaf area index")
    ax.set_ylabel(f"LAI ({_units(ds, 'lai')})")


def _plot_carbon_pools(ax: Axes, ds: xr.Dataset, time: np.ndarray) -> None:
    units = "?"
    for name, label in CARBON_POOLS:
        if name in ds:
            ax.plot(time, ds[name].values, label=label)
            units = _units(ds, name)
    ax.set_yscale("log")
    low, high = ax.get_ylim()
    ax.set_ylim(low, high * (high / low) ** LEGEND_HEADROOM)  # room for the legend
    ax.set_title("Carbon pools (end of step)")
    ax.set_ylabel(f"carbon ({units})")
    ax.legend(loc="upper center", fontsize="small", frameon=False, ncols=3)


def _plot_water(ax: Axes, ds: xr.Dataset, time: np.ndarray) -> None:
    units = "?"
    for name, label in WATER_POOLS:
        if name in ds:
            ax.plot(time, ds[name].values, label=label)
            units = _units(ds, name)
    ax.set_ylim(bottom=0.0)
    ax.set_title("Water")
    ax.set_ylabel(f"water pool ({units})")
    et_ax = ax.twinx()
    et_ax.plot(time, ds["ET"].values, color="tab:cyan", lw=0.9, alpha=0.8, label="ET")
    et_ax.set_ylim(bottom=0.0)
    et_ax.set_ylabel(f"ET ({_units(ds, 'ET')})", color="tab:cyan")
    et_ax.tick_params(axis="y", colors="tab:cyan")
    lines = ax.get_lines() + et_ax.get_lines()
    for axis in (ax, et_ax):
        low, high = axis.get_ylim()
        axis.set_ylim(low, high + LEGEND_HEADROOM * (high - low))  # room for the legend
    ax.legend(
        lines,
        [ln.get_label() for ln in lines],
        loc="upper center",
        fontsize="small",
        frameon=False,
        ncols=len(lines),
    )


def plot_simulation(
    ds: xr.Dataset,
    path: str | os.PathLike,
    *,
    site: int = 0,
    title: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Save a 2x2 quick-look figure of a simulated dataset.

    Panels: GPP, NEE and ecosystem respiration (RECO = GPP + NEE; gC m-2 d-1); leaf area
    index (m2 m-2); the six carbon pools on a log scale (gC m-2); the water pool(s) (mm)
    with evapotranspiration (mm d-1) on a second axis.

    Parameters
    ----------
    ds : xarray.Dataset
        Output of :func:`~differland_bayes.simulation.simulate_dataset` (needs ``gpp``,
        ``nee``, ``lai``, ``ET`` and the ``next_*_pool`` variables).
    path : path-like
        Image file; the format follows the suffix (``.png``, ``.pdf``, ``.svg``).
    site : int
        Position along ``site`` to draw when the dataset has several sites.
    title : str, optional
        Figure title; defaults to the model name, mode and water-stress option.
    overwrite : bool
        Whether an existing image may be replaced.

    Returns
    -------
    pathlib.Path
        The written image.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    KeyError
        If a required variable is missing.
    """
    missing = [v for v in ("gpp", "nee", "lai", "ET") if v not in ds]
    if missing:
        raise KeyError(f"cannot plot: dataset lacks the variables {missing}")
    if "site" in ds.dims:
        label = ds["site"].values[site] if "site" in ds.coords else site
        ds = ds.isel(site=site)
        site_note = f", site {label}"
    else:
        site_note = ""
    time = ds["time"].values
    if title is None:
        attrs = ds.attrs
        title = (
            f"{attrs.get('model', 'simulation')} ({attrs.get('mode', '?')} mode, "
            f"water stress {attrs.get('water_stress', '?')}){site_note}"
        )

    fig = Figure(figsize=FIGURE_SIZE, layout="constrained")
    FigureCanvasAgg(fig)
    (ax_flux, ax_lai), (ax_carbon, ax_water) = fig.subplots(2, 2, sharex=True)
    _plot_fluxes(ax_flux, ds, time)
    _plot_lai(ax_lai, ds, time)
    _plot_carbon_pools(ax_carbon, ds, time)
    _plot_water(ax_water, ds, time)
    for ax in (ax_flux, ax_lai, ax_carbon, ax_water):
        _format_time_axis(ax)
        ax.grid(True, alpha=0.3)
    fig.suptitle(title)

    path = Path(path)
    fmt = path.suffix.lstrip(".") or "png"
    with atomic_path(path, overwrite=overwrite) as tmp:
        fig.savefig(tmp, dpi=DPI, format=fmt)
    log.info("wrote %s", path)
    return path
