"""Figures of the trait–environment analyses (matplotlib, no display needed).

Each function takes the dataset of one analysis and returns a
:class:`matplotlib.figure.Figure` built on an Agg canvas (no ``pyplot`` state), with the
units of the data in the axis labels; save it with ``fig.savefig(path)``.

==============================  ==============================================
function                        dataset of
==============================  ==============================================
:func:`plot_partial_dependence`  :func:`.partial_dependence` (``_network``)
:func:`plot_variance_partition`  :func:`.variance_partition`
:func:`plot_latent_axes`         :func:`.latent_axes`
:func:`plot_importance`          :func:`.permutation_importance` (``_network``)
:func:`plot_correlation`         :func:`.posterior_correlation`
:func:`plot_contraction`         :func:`.contraction`
==============================  ==============================================
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

__all__ = [
    "plot_contraction",
    "plot_correlation",
    "plot_importance",
    "plot_latent_axes",
    "plot_partial_dependence",
    "plot_variance_partition",
]

log = logging.getLogger(__name__)

#: colours of the variance components (class, environment, shared, residual)
COMPONENT_COLOURS = ("tab:green", "tab:blue", "tab:purple", "0.8")
PANEL = 2.4  #: inches per panel of a grid


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _units(ds: xr.Dataset, coord: str, name: str) -> str:
    if coord in ds.coords:
        dim = ds[coord].dims[0]
        return str(ds[coord].sel({dim: name}).values)
    return "1"


def _pick(ds: xr.Dataset, dim: str, chosen: Sequence[str] | None, what: str) -> list[str]:
    have = [str(v) for v in ds[dim].values]
    if chosen is None:
        return have
    unknown = [c for c in chosen if c not in have]
    if unknown:
        raise ValueError(f"{what}: unknown {unknown}; available {have}")
    return list(chosen)


def plot_partial_dependence(
    ds: xr.Dataset,
    *,
    parameters: Sequence[str] | None = None,
    features: Sequence[str] | None = None,
    by_class: bool = False,
    compare: xr.Dataset | None = None,
    compare_label: str = "prior network",
    yscale: str = "linear",
) -> Figure:
    """Partial dependence curves with credible bands: parameters (rows) x predictors.

    Parameters
    ----------
    ds : xarray.Dataset
        From :func:`.partial_dependence` or :func:`.partial_dependence_network`.
    parameters, features : sequence of str, optional
        Rows and columns (default all).
    by_class : bool
        Draw each vegetation class's curve (and band) in its own colour instead of the
        curve over all sites.
    compare : xarray.Dataset, optional
        A second partial dependence (e.g. the network's) drawn dashed with its band.
    compare_label : str
        Legend label of ``compare``.
    yscale : {"linear", "log"}
        Scale of the parameter axes (``log`` suits parameters spanning magnitudes).
    """
    pars = _pick(ds, "parameter", parameters, "parameters")
    feats = _pick(ds, "feature", features, "features")
    fig = _figure(PANEL * len(feats) + 0.8, PANEL * 0.8 * len(pars) + 0.6)
    axes = fig.subplots(len(pars), len(feats), squeeze=False, sharex="col")
    classes = [str(c) for c in ds["class"].values]
    colours = {c: f"C{i % 10}" for i, c in enumerate(classes)}
    for i, p in enumerate(pars):
        for j, f in enumerate(feats):
            ax = axes[i, j]
            x = ds["grid_value"].sel(feature=f).values
            sel = {"parameter": p, "feature": f}
            if by_class:
                for c in classes:
                    s = {**sel, "class": c}
                    ax.fill_between(x, ds["pd_class_lower"].sel(s), ds["pd_class_upper"].sel(s),
                                    color=colours[c], alpha=0.15, lw=0)  # fmt: skip
                    ax.plot(x, ds["pd_class_mean"].sel(s), color=colours[c], label=c)
            else:
                ax.fill_between(x, ds["pd_lower"].sel(sel), ds["pd_upper"].sel(sel),
                                color="tab:blue", alpha=0.25, lw=0)  # fmt: skip
                ax.plot(x, ds["pd_mean"].sel(sel), color="tab:blue", label="site parameters")
            if compare is not None and p in compare["parameter"] and f in compare["feature"]:
                xc = compare["grid_value"].sel(feature=f).values
                ax.fill_between(xc, compare["pd_lower"].sel(sel), compare["pd_upper"].sel(sel),
                                color="tab:orange", alpha=0.2, lw=0)  # fmt: skip
                ax.plot(xc, compare["pd_mean"].sel(sel), "--", color="tab:orange",
                        label=compare_label)  # fmt: skip
            ax.set_yscale(yscale)
            if i == len(pars) - 1:
                ax.set_xlabel(f"{f} [{_units(ds, 'feature_units', f)}]")
            if j == 0:
                ax.set_ylabel(f"{p} [{_units(ds, 'parameter_units', p)}]")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if len(labels) > 1:
        fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 6))
    fig.suptitle(f"Partial dependence ({int(100 * ds.attrs.get('credible_mass', 0.9))} % bands)")
    return fig


def plot_variance_partition(ds: xr.Dataset) -> Figure:
    """Stacked bars of the variance fractions per parameter, with credible intervals.

    Left: fractions of the across-site variance (mean; whiskers: credible interval of
    each component at its segment's end; a negative ``shared`` part, suppression, is
    drawn hatched to the left of 0, so that the bar still nets to 1). Right: the
    classes' share of the explainable variance with its interval and ``P(share < 0.5)``.
    """
    pars = [str(p) for p in ds["parameter"].values]
    comps = [str(c) for c in ds["component"].values]
    labels = [*pars, "all parameters"]
    mean = np.vstack([ds["fraction_mean"].values, ds["fraction_overall_mean"].values[None]])
    lo = np.vstack([ds["fraction_lower"].values, ds["fraction_overall_lower"].values[None]])
    hi = np.vstack([ds["fraction_upper"].values, ds["fraction_overall_upper"].values[None]])
    fig = _figure(10.0, 0.35 * len(labels) + 1.6)
    ax, ax2 = fig.subplots(1, 2, sharey=True, width_ratios=(2, 1))
    y = np.arange(len(labels))[::-1]
    left = np.zeros(len(labels))
    for k, c in enumerate(comps):
        m = mean[:, k]
        neg = m < 0  # suppression (negative overlap): drawn leftwards from 0, hatched
        width = np.abs(m)
        start = np.where(neg, m, left)
        ax.barh(y, width, left=start, color=COMPONENT_COLOURS[k % 4], label=c, height=0.7)
        if neg.any():
            ax.barh(y[neg], width[neg], left=m[neg], color="none", ec="k", hatch="//",
                    height=0.7)  # fmt: skip
        end = np.where(neg, m, left + width)
        err = np.vstack([np.maximum(m - lo[:, k], 0), np.maximum(hi[:, k] - m, 0)])
        ax.errorbar(end, y, xerr=err, fmt="none", ecolor="k", elinewidth=0.8, capsize=2)
        left = np.where(neg, left, left + width)
    ax.set_yticks(y, labels)
    ax.set_xlabel("fraction of across-site variance [1]")
    ax.set_xlim(min(0.0, float(mean.min())) - 0.02, max(1.05, float(left.max()) + 0.05))
    ax.axvline(0, color="k", lw=0.8)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=4, fontsize=8, frameon=False)
    share = np.append(ds["class_share_mean"].values, ds["class_share_overall_mean"].values)
    s_lo = np.append(ds["class_share_lower"].values, ds["class_share_overall_lower"].values)
    s_hi = np.append(ds["class_share_upper"].values, ds["class_share_overall_upper"].values)
    prob = np.append(ds["p_class_below_half"].values, ds["p_class_below_half_overall"].values)
    ax2.errorbar(share, y, xerr=np.vstack([share - s_lo, s_hi - share]), fmt="o", color="tab:green")
    ax2.axvline(0.5, color="0.5", ls=":")
    for yi, pi in zip(y, prob, strict=True):
        if np.isfinite(pi):
            ax2.annotate(f"P<½ = {pi:.2f}", (1.02, yi), xycoords=("axes fraction", "data"),
                         va="center", fontsize=7)  # fmt: skip
    ax2.set_xlim(-0.05, 1.05)
    ax2.set_xlabel("class share of explainable variance [1]")
    fig.suptitle(f"Variance partitioning ({ds.attrs.get('scale', 'log')} scale)")
    return fig


def plot_latent_axes(
    ds: xr.Dataset, *, axes: tuple[int, int] = (1, 2), vegetation_class: Sequence | None = None
) -> Figure:
    """Biplot of two latent axes, loadings with bands, explained variance, env correlations.

    Parameters
    ----------
    ds : xarray.Dataset
        From :func:`.latent_axes`.
    axes : tuple of int
        The two axes of the biplot (1-based; the first alone if only one exists).
    vegetation_class : sequence, optional
        ``(site,)`` labels to colour the site scores.
    """
    n_ax = ds.sizes["axis"]
    a, b = (axes[0], axes[1] if n_ax > 1 else axes[0])
    has_env = "env_correlation_mean" in ds
    fig = _figure(14.0 if has_env else 10.5, 4.2)
    panels = fig.subplots(
        1, 4 if has_env else 3, width_ratios=(1.2, 1, 0.7, 1)[: 4 if has_env else 3]
    )
    ax = panels[0]
    sa = ds["score_mean"].sel(axis=a).values
    sb = ds["score_mean"].sel(axis=b).values
    if vegetation_class is not None:
        labels = np.asarray(vegetation_class).astype(str)
        for i, c in enumerate(sorted(set(labels))):
            m = labels == c
            ax.scatter(sa[m], sb[m], s=10, color=f"C{i % 10}", label=c, alpha=0.7)
        ax.legend(fontsize=7, loc="best")
    else:
        ax.scatter(sa, sb, s=10, color="0.5", alpha=0.7)
    la = ds["loading_mean"].sel(axis=a).values
    lb = ds["loading_mean"].sel(axis=b).values
    reach = float(max(np.abs(sa).max(), np.abs(sb).max(), 1e-9))
    for p, xa, xb in zip(ds["parameter"].values, la, lb, strict=True):
        ax.annotate("", (xa * reach, xb * reach), (0, 0),
                    arrowprops={"arrowstyle": "->", "color": "tab:red"})  # fmt: skip
        ax.text(xa * reach * 1.08, xb * reach * 1.08, str(p), fontsize=7, color="tab:red")
    ax.set_xlabel(f"axis {a} score [1, sd units]")
    ax.set_ylabel(f"axis {b} score [1, sd units]")
    ax.set_title("biplot (arrows: loadings x max score)", fontsize=9)
    ax = panels[1]
    pars = [str(p) for p in ds["parameter"].values]
    yy = np.arange(len(pars))[::-1]
    for k, ax_id in enumerate(ds["axis"].values[:3]):
        m = ds["loading_mean"].sel(axis=ax_id).values
        lo = ds["loading_lower"].sel(axis=ax_id).values
        hi = ds["loading_upper"].sel(axis=ax_id).values
        off = (k - 1) * 0.25
        ax.errorbar(m, yy + off, xerr=np.vstack([m - lo, hi - m]), fmt="o", ms=3,
                    color=f"C{k}", label=f"axis {ax_id}")  # fmt: skip
    ax.axvline(0, color="0.6", lw=0.8)
    ax.set_yticks(yy, pars)
    ax.set_xlabel("loading (correlation with axis) [1]")
    ax.legend(fontsize=7)
    ax = panels[2]
    m = ds["explained_mean"].values
    err = np.vstack([m - ds["explained_lower"].values, ds["explained_upper"].values - m])
    ax.bar([str(v) for v in ds["axis"].values], m, yerr=err, color="0.6", capsize=3)
    ax.set_xlabel("axis")
    ax.set_ylabel("variance explained [1]")
    if has_env:
        ax = panels[3]
        corr = ds["env_correlation_mean"].values
        im = ax.imshow(corr.T, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
        ax.set_xticks(range(n_ax), [f"axis {v}" for v in ds["axis"].values])
        ax.set_yticks(
            range(ds.sizes["feature"]), [str(f) for f in ds["feature"].values], fontsize=7
        )
        fig.colorbar(im, ax=ax, label="correlation with predictor [1]")
    fig.suptitle("Latent axes of the site parameters")
    return fig


def _heatmap(
    ax, values: np.ndarray, rows: list[str], cols: list[str], *, cmap: str, vmin: float,
    vmax: float, fmt: str,
):  # fmt: skip
    im = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    if values.size <= 400:
        for (i, j), v in np.ndenumerate(values):
            if np.isfinite(v):
                rgb = im.cmap(im.norm(v))[:3]
                dark = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] < 0.5
                ax.text(j, i, format(v, fmt), ha="center", va="center", fontsize=7,
                        color="w" if dark else "k")  # fmt: skip
    return im


def plot_importance(ds: xr.Dataset) -> Figure:
    """Heatmap of permutation importance (parameter x predictor), mean and band in text."""
    pars = [f"{p} [{_units(ds, 'parameter_units', str(p))}]" for p in ds["parameter"].values]
    feats = [str(f) for f in ds["feature"].values]
    mean = ds["importance_mean"].values
    fig = _figure(1.0 + 1.1 * len(feats), 1.2 + 0.45 * len(pars))
    ax = fig.subplots()
    vmax = float(np.nanmax(mean)) if np.isfinite(mean).any() else 1.0
    im = _heatmap(ax, mean, pars, feats, cmap="viridis", vmin=0.0, vmax=max(vmax, 1e-9), fmt=".2f")
    top = ds["p_most_important"].values
    for (i, j), v in np.ndenumerate(top):
        if v >= 0.5:
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="w", lw=1.5))
    fig.colorbar(im, ax=ax, label="importance [1]")
    ax.set_title(
        f"Permutation importance: share of across-site variance\n({ds.attrs.get('scale', 'log')}"
        " scale; framed: P(most important) >= 0.5)",
        fontsize=9,
    )
    return fig


def plot_correlation(ds: xr.Dataset) -> Figure:
    """Heatmap of the median within-site posterior correlation; flagged pairs framed."""
    names = [str(p) for p in ds["parameter"].values]
    fig = _figure(1.5 + 0.55 * len(names), 1.0 + 0.5 * len(names))
    ax = fig.subplots()
    im = _heatmap(ax, ds["r_median"].values, names, names, cmap="RdBu_r", vmin=-1, vmax=1,
                  fmt=".2f")  # fmt: skip
    for (i, j), v in np.ndenumerate(ds["flagged"].values):
        if v:
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="k", lw=2))
    fig.colorbar(im, ax=ax, label=f"median {ds.attrs.get('method')} r [1]")
    ax.set_title(
        f"Within-site posterior correlation\n(framed: |r| > {ds.attrs.get('threshold', 0.7)} "
        f"at >= {100 * ds.attrs.get('min_fraction', 0.5):.0f} % of sites)",
        fontsize=9,
    )
    return fig


def plot_contraction(ds: xr.Dataset) -> Figure:
    """Bars of posterior-to-prior contraction per parameter, range over sites."""
    pars = [str(p) for p in ds["parameter"].values]
    med = ds["contraction_median"].values
    err = np.vstack([med - ds["contraction_lower"].values, ds["contraction_upper"].values - med])
    fig = _figure(max(4.0, 0.5 * len(pars) + 1.5), 3.6)
    ax = fig.subplots()
    colours = np.where(med >= 0.5, "tab:blue", "tab:gray")
    ax.bar(pars, med, yerr=np.where(np.isfinite(err), err, 0), color=colours, capsize=3)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_ylim(min(-0.1, float(np.nanmin(ds["contraction_lower"].values)) - 0.05), 1.05)
    ax.set_ylabel("contraction 1 - var_post / var_prior [1]")
    ax.tick_params(axis="x", rotation=45)
    ax.set_title(
        f"Posterior contraction\n(median and range over sites; {ds.attrs.get('scale', 'log')} "
        "scale)",
        fontsize=9,
    )
    return fig
