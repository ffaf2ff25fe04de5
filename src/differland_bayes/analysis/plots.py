"""Figures of a run's DataTree: predictive time series, predicted vs observed, PIT, ELPD.

Figures are :class:`matplotlib.figure.Figure` objects on the Agg canvas (no ``pyplot``
state, nothing is ever shown); :func:`figure_png` renders one to PNG bytes. The ELPD
comparison uses arviz-plots' ``plot_compare`` (matplotlib backend) and falls back to a
plain error-bar plot. Axis labels carry the units of the streams.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from .diagnostics import SPLITS, draw_axis_first, site_groups, split_labels, streams_of

__all__ = [
    "figure_png",
    "plot_elpd_comparison",
    "plot_loss",
    "plot_pit_histograms",
    "plot_predicted_vs_observed",
    "plot_predictive_timeseries",
]

log = logging.getLogger(__name__)

DPI = 110  #: dots per inch of rendered figures
PANEL = (4.2, 3.2)  #: inches per panel (width, height)
PERIOD_STYLE = {  #: marker style of observations per period
    "assimilated": {"color": "black", "marker": "o", "facecolors": "black"},
    "withheld": {"color": "tab:red", "marker": "o", "facecolors": "none"},
    "unused": {"color": "grey", "marker": ".", "facecolors": "grey"},
}


def _figure(n_panels: int, ncols: int = 3) -> tuple[Figure, list[Axes]]:
    ncols = max(1, min(ncols, n_panels))
    nrows = int(np.ceil(n_panels / ncols))
    fig = Figure(figsize=(PANEL[0] * ncols, PANEL[1] * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel().tolist()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def figure_png(fig: Figure, *, dpi: int = DPI) -> bytes:
    """Render a figure to PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def _label(dt: xr.DataTree, stream: str) -> str:
    units = dt["observed_data"][stream].attrs.get("units", "")
    return f"{stream} ({units})" if units else stream


def _draws(dt: xr.DataTree, stream: str) -> np.ndarray:
    obs = dt["observed_data"][stream]
    da = draw_axis_first(dt["posterior_predictive"][stream]).transpose("sample", *obs.dims)
    return np.asarray(da.values, float)


def _default_sites(dt: xr.DataTree, n: int) -> list[int]:
    """Up to ``n`` sites: fitted ones first, then held-out and unseen ones."""
    groups = site_groups(dt)
    order = [i for g in ("fitted", "heldout", "unseen") for i in np.flatnonzero(groups == g)]
    take = [order[0]] if order else []
    for g in ("heldout", "unseen"):  # one of each other kind, when present
        extra = [i for i in np.flatnonzero(groups == g) if i not in take]
        take += extra[:1]
    take += [i for i in order if i not in take]
    return sorted(take[:n], key=order.index)


def plot_predictive_timeseries(
    dt: xr.DataTree, stream: str, sites: Sequence[str] | None = None, *, max_sites: int = 6
) -> Figure:
    """Posterior predictive median, 50 % and 90 % bands and observations over time.

    Parameters
    ----------
    dt : xarray.DataTree
        A run's DataTree.
    stream : str
        The stream.
    sites : sequence of str, optional
        Site ids; default up to ``max_sites`` (fitted first, one held-out and one unseen
        site when there are any).
    max_sites : int
        Most sites drawn when ``sites`` is not given.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per site; observations of the assimilated period filled, withheld
        ones open.
    """
    ids = np.asarray(dt["observed_data"]["site"].values).astype(str)
    if sites is None:
        idx = _default_sites(dt, max_sites)
    else:
        unknown = [s for s in sites if s not in ids]
        if unknown:
            raise KeyError(f"sites: {unknown} not in the DataTree (it has {list(ids)})")
        idx = [int(np.flatnonzero(ids == s)[0]) for s in sites]
    obs = np.asarray(dt["observed_data"][stream].values, float)
    draws = _draws(dt, stream)
    q = np.quantile(draws[:, idx], [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)
    time = np.asarray(dt["observed_data"]["time"].values)
    labels, groups = split_labels(dt), site_groups(dt)
    fig, axes = _figure(len(idx), ncols=2)
    for j, (ax, i) in enumerate(zip(axes, idx, strict=True)):
        ax.fill_between(time, q[0, j], q[4, j], color="tab:blue", alpha=0.2, label="90 %")
        ax.fill_between(time, q[1, j], q[3, j], color="tab:blue", alpha=0.4, label="50 %")
        ax.plot(time, q[2, j], color="tab:blue", lw=1.2, label="median")
        for period, style in PERIOD_STYLE.items():
            sel = np.isfinite(obs[i]) & (labels[i] == period)
            if sel.any():
                ax.scatter(time[sel], obs[i, sel], s=12, edgecolors=style["color"],
                           facecolors=style["facecolors"], marker=style["marker"],
                           label=f"observed ({period})", zorder=3)  # fmt: skip
        ax.set_title(f"{ids[i]} ({groups[i]})", fontsize="medium")
        ax.set_ylabel(_label(dt, stream))
        locator = AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        if j == 0:
            ax.legend(fontsize="x-small", loc="best")
    fig.suptitle(f"{stream}: posterior predictive (with observation noise)")
    return fig


def plot_predicted_vs_observed(dt: xr.DataTree, streams: Sequence[str] | None = None) -> Figure:
    """Posterior predictive mean against the observations, one panel per stream.

    Observations of the assimilated period are black, withheld ones red; the 1:1 line
    is dashed. Both axes in the stream's units.
    """
    streams = list(streams or streams_of(dt))
    labels = split_labels(dt)
    fig, axes = _figure(len(streams))
    for ax, s in zip(axes, streams, strict=True):
        obs = np.asarray(dt["observed_data"][s].values, float)
        mean = _draws(dt, s).mean(axis=0)
        for period in (*SPLITS.values(), "unused"):
            sel = np.isfinite(obs) & (labels == period)
            if sel.any():
                style = PERIOD_STYLE[period]
                ax.scatter(obs[sel], mean[sel], s=8, alpha=0.6, edgecolors=style["color"],
                           facecolors=style["facecolors"], label=period)  # fmt: skip
        finite = np.isfinite(obs)
        if finite.any():
            lo = float(min(obs[finite].min(), mean[finite].min()))
            hi = float(max(obs[finite].max(), mean[finite].max()))
            ax.plot([lo, hi], [lo, hi], ls="--", color="grey", lw=1)
        ax.set_xlabel(f"observed {_label(dt, s)}")
        ax.set_ylabel(f"predicted {_label(dt, s)}")
        ax.legend(fontsize="x-small")
    fig.suptitle("posterior predictive mean vs observations")
    return fig


def plot_pit_histograms(
    pit: Mapping[str, np.ndarray],
    loo_pit: Mapping[str, np.ndarray] | None = None,
    *,
    bins: int = 10,
) -> Figure:
    """Histograms of PIT values per stream (uniform when calibrated).

    Parameters
    ----------
    pit : mapping of str to array_like
        Stream -> PIT values (NaN ignored).
    loo_pit : mapping of str to array_like, optional
        Stream -> LOO-PIT values, drawn as a step outline.
    bins : int
        Number of bins on ``[0, 1]``.
    """
    streams = list(pit)
    fig, axes = _figure(max(len(streams), 1))
    edges = np.linspace(0, 1, bins + 1)
    for ax, s in zip(axes, streams, strict=False):
        u = np.asarray(pit[s], float).ravel()
        u = u[np.isfinite(u)]
        ax.hist(u, bins=edges, density=True, color="tab:blue", alpha=0.5, label=f"PIT (n={u.size})")
        if loo_pit is not None and s in loo_pit:
            v = np.asarray(loo_pit[s], float).ravel()
            v = v[np.isfinite(v)]
            ax.hist(v, bins=edges, density=True, histtype="step", color="black", lw=1.5,
                    label=f"LOO-PIT (n={v.size})")  # fmt: skip
        ax.axhline(1.0, color="grey", ls="--", lw=1)
        ax.set_xlim(0, 1)
        ax.set_xlabel(f"{s}: PIT (1)")
        ax.set_ylabel("density (1)")
        ax.legend(fontsize="x-small")
    fig.suptitle("probability integral transform (flat = calibrated)")
    return fig


def plot_loss(dt: xr.DataTree) -> Figure:
    """Plot the SVI loss (-ELBO, nat) per step and the early-stopping sites' loss."""
    loss = dt["loss"]
    fig, (ax,) = _figure(1)
    y = np.asarray(loss["loss"].values, float)
    ax.plot(np.asarray(loss["step"].values), y, lw=1, label="training -ELBO")
    if "heldout_loss" in loss.data_vars and loss.sizes.get("heldout_step", 0):
        ax.plot(np.asarray(loss["heldout_step"].values), loss["heldout_loss"].values, "o-",
                ms=3, label="early-stopping sites")  # fmt: skip
    if np.all(y[np.isfinite(y)] > 0):
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nat)")
    ax.legend(fontsize="x-small")
    return fig


def plot_elpd_comparison(table: pd.DataFrame) -> Figure:
    """ELPD (with standard errors) of compared runs (table of :func:`~.compare.compare_runs`).

    Uses arviz-plots' ``plot_compare``; falls back to matplotlib error bars.
    """
    try:
        import arviz_plots as azp
        import matplotlib.pyplot as plt

        pc = azp.plot_compare(table, backend="matplotlib")
        fig = pc.viz["figure"].item()
        plt.close(fig)  # detach it from pyplot's state: it is only rendered
        label = "ELPD difference to the best run (PSIS-LOO, nat)"
        fig.axes[0].set_xlabel(label if "elpd_diff" in table else "ELPD (PSIS-LOO, nat)")
        return fig
    except Exception as e:  # any failure of the optional plot: fall back
        log.debug("arviz-plots plot_compare failed (%s); plain error bars instead", e)
    fig, (ax,) = _figure(1)
    y = np.arange(len(table))[::-1]
    ax.errorbar(table["elpd"], y, xerr=table["se"], fmt="o", color="black", capsize=3)
    ax.set_yticks(y, [str(i) for i in table.index])
    ax.axvline(float(table["elpd"].max()), color="grey", ls="--", lw=1)
    ax.set_xlabel("ELPD (PSIS-LOO, nat)")
    return fig
