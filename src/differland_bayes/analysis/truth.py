"""Compare a fit of a synthetic world with the world's known truth.

A synthetic world (:func:`differland_bayes.synthetic.synthesize`) stores the true
parameters of every site (``true_parameters`` in physical units, ``true_z`` and its
site residual ``true_z_residual`` in the unconstrained space) and the environment ->
parameter relationship they follow (``relationship_*``, read back with
:meth:`~differland_bayes.synthetic.Relationship.from_dataset`). For the parameters whose
truth varies with the environment, :func:`compare_with_truth` measures how well a fit
recovered them:

* **site parameters**: the posterior median and equal-tailed 90 % interval of every
  (site, parameter) against the true value, and the share of intervals that contain it
  (*coverage*), at the fitted sites and at the unseen sites (predicted from their
  environment alone);
* **relationship**: the correlation, across sites, between the learned network
  location ``f(x)`` of ``z`` and the true relationship without its residual
  (``true_z - true_z_residual``);
* **partial dependence**: the learned partial dependence
  (:func:`~.partial_dependence.partial_dependence` of the posterior site parameters at
  the fitted sites) against the same partial dependence of the true site parameters,
  computed exactly from the relationship: each site keeps its environment, class and
  true residual, one predictor is set to the grid value, and the log parameters are
  averaged over the sites (a geometric mean in physical units);
* **prediction**: R² of the posterior predictive mean against the observations of the
  unseen sites, per stream.

:func:`plot_traits_vs_truth` draws the site parameters and the partial dependence
against the truth, with units in every label.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..params import to_physical_numpy

__all__ = [
    "TruthComparison",
    "compare_with_truth",
    "plot_traits_vs_truth",
    "predictive_r2",
    "relationship_correlation",
    "site_parameter_table",
    "true_partial_dependence",
    "varying_parameters",
]

log = logging.getLogger(__name__)

PROB = 0.9  #: probability mass of the intervals compared with the truth
FITTED_STYLE = {"color": "tab:blue", "marker": "o", "label": "fitted sites"}
UNSEEN_STYLE = {"color": "tab:orange", "marker": "^", "label": "unseen sites"}
LOG_AXIS_RATIO = 20.0  #: log axes for parameters whose true values span more than this


def _str(values: Any) -> np.ndarray:
    return np.asarray(values).astype(str)


def varying_parameters(world: xr.Dataset, parameters: Sequence[str] | None = None) -> list[str]:
    """Parameters whose truth follows the world's relationship (in ``parameters``' order).

    Parameters
    ----------
    world : xarray.Dataset
        A synthetic world (with ``varying_parameter``).
    parameters : sequence of str, optional
        Restrict to these (e.g. the free parameters of a fit); default all varying ones.

    Returns
    -------
    list of str
        The names, in the order of ``parameters`` (default: the world's).

    Raises
    ------
    ValueError
        If ``world`` is not a synthetic world or none of ``parameters`` varies.
    """
    if "varying_parameter" not in world.coords or "true_parameters" not in world:
        raise ValueError(
            "the dataset has no known truth (varying_parameter, true_parameters): expected a "
            "synthetic world of 'differland synthesize'"
        )
    varying = list(_str(world["varying_parameter"].values))
    if parameters is None:
        return varying
    chosen = [str(p) for p in parameters if str(p) in varying]
    if not chosen:
        raise ValueError(
            f"none of the parameters {list(parameters)} varies in the world (varying: {varying})"
        )
    return chosen


def site_parameter_table(
    pred: xr.Dataset, world: xr.Dataset, parameters: Sequence[str] | None = None
) -> pd.DataFrame:
    """Posterior medians and 90 % intervals of the site parameters against the truth.

    Parameters
    ----------
    pred : xarray.Dataset
        Predictions of :func:`~differland_bayes.bayes.predict_dataset.predict_to_dataset`
        for (some of) the world's sites, with ``parameters_quantile`` at the quantiles
        0.05, 0.5 and 0.95 and the ``fitted`` coordinate.
    world : xarray.Dataset
        The synthetic world.
    parameters : sequence of str, optional
        Parameters to compare (default: the predicted ones that vary in the world).

    Returns
    -------
    pandas.DataFrame
        One row per (site, parameter): ``site``, ``vegetation_class``, ``fitted`` (the
        site's own fitted residuals were used), ``parameter``, ``units``, ``true``,
        ``lower`` (5 %), ``median``, ``upper`` (95 %) in the parameter's units, and
        ``covered`` (the interval contains the true value).

    Raises
    ------
    ValueError
        If ``pred`` lacks the quantiles or a site of ``pred`` is not in ``world``.
    """
    pq = pred["parameters_quantile"]
    predicted = list(_str(pq["parameter"].values))
    names = varying_parameters(world, parameters if parameters is not None else predicted)
    names = [p for p in names if p in predicted]
    q = np.asarray(pq["quantile"].values, float)
    lo_q, hi_q = (1 - PROB) / 2, (1 + PROB) / 2
    idx = {}
    for what, level in (("lower", lo_q), ("median", 0.5), ("upper", hi_q)):
        hit = np.flatnonzero(np.isclose(q, level))
        if not hit.size:
            raise ValueError(
                f"predictions: expected parameters_quantile at {lo_q:g}, 0.5 and {hi_q:g}, "
                f"found {q.tolist()}"
            )
        idx[what] = int(hit[0])
    sites = _str(pred["site"].values)
    known = set(_str(world["site"].values))
    unknown = [s for s in sites if s not in known]
    if unknown:
        raise ValueError(f"predictions: sites {unknown[:5]} are not in the world")
    truth = world["true_parameters"].sel(site=list(sites), parameter=names)
    units = dict(zip(_str(world["parameter"].values), _str(world["parameter_units"].values),
                     strict=True))  # fmt: skip
    veg = (_str(world["vegetation_class"].sel(site=list(sites)).values)
           if "vegetation_class" in world.coords else np.full(len(sites), ""))  # fmt: skip
    fitted = (np.asarray(pred["fitted"].values, bool) if "fitted" in pred.coords
              else np.zeros(len(sites), bool))  # fmt: skip
    rows = []
    for p in names:
        vals = pq.sel(parameter=p).transpose("quantile", "site").values
        true = truth.sel(parameter=p).transpose("site").values
        lower, median, upper = (vals[idx[k]] for k in ("lower", "median", "upper"))
        rows.append(
            pd.DataFrame({
                "site": sites, "vegetation_class": veg, "fitted": fitted, "parameter": p,
                "units": units.get(p, "1"), "true": true, "lower": lower, "median": median,
                "upper": upper, "covered": (lower <= true) & (true <= upper),
            })
        )  # fmt: skip
    return pd.concat(rows, ignore_index=True)


def _site_env(world: xr.Dataset, sites: Sequence[str]) -> tuple[np.ndarray, list[str], np.ndarray]:
    env = world["env"].sel(site=list(sites)).transpose("site", "feature")
    veg = (_str(world["vegetation_class"].sel(site=list(sites)).values)
           if "vegetation_class" in world.coords else np.full(len(sites), ""))  # fmt: skip
    return np.asarray(env.values, float), list(_str(env["feature"].values)), veg


def true_partial_dependence(
    world: xr.Dataset, learned: xr.Dataset, sites: Sequence[str]
) -> xr.DataArray:
    """Partial dependence of the true site parameters, on the grid of a learned one.

    For parameter ``p``, predictor ``j`` and grid value ``g``: every site keeps its
    environment, class and true residual, ``x_j`` is set to ``g``, the relationship gives
    ``z``, and ``log theta_p`` is averaged over the sites; the result is its exponential
    (a geometric mean, as :func:`~.partial_dependence.partial_dependence` reports on its
    default log scale).

    Parameters
    ----------
    world : xarray.Dataset
        The synthetic world (``relationship_*``, ``env``, ``true_z_residual``,
        parameter bounds).
    learned : xarray.Dataset
        A partial dependence (``parameter``, ``feature``, ``grid_value``).
    sites : sequence of str
        The sites averaged over (those of ``learned``).

    Returns
    -------
    xarray.DataArray
        ``pd_true (parameter, feature, grid)`` in the parameters' physical units (the
        ``parameter_units`` coordinate), for the parameters of ``learned`` that vary in
        the world and every feature of ``learned``; NaN for a feature the relationship
        does not use as a predictor (the truth does not depend on it: its curve is flat).
    """
    from ..synthetic import Relationship

    rel = Relationship.from_dataset(world)
    names = [p for p in _str(learned["parameter"].values) if p in rel.parameters]
    rel = rel.subset(names)
    env, feats, veg = _site_env(world, sites)
    residual = world["true_z_residual"].sel(site=list(sites), parameter=names)
    residual = residual.transpose("site", "parameter").values
    lower = world["parameter_lower"].sel(parameter=names).values
    upper = world["parameter_upper"].sel(parameter=names).values
    features = list(_str(learned["feature"].values))
    n_g = learned.sizes["grid"]
    out = np.full((len(names), len(features), n_g), np.nan)
    for k, f in enumerate(features):
        if f not in feats:
            continue
        j = feats.index(f)
        grid = learned["grid_value"].sel(feature=f).values
        for g in range(n_g):
            x = env.copy()
            x[:, j] = grid[g]
            z = rel.mean_z(x, feats, veg) + residual
            out[:, k, g] = np.exp(np.log(to_physical_numpy(z, lower, upper)).mean(axis=0))
    units = world["parameter_units"].sel(parameter=names).values
    return xr.DataArray(
        out,
        dims=("parameter", "feature", "grid"),
        coords={
            "parameter": names,
            "feature": features,
            "grid": learned["grid"].values,
            "parameter_units": ("parameter", _str(units)),
        },  # fmt: skip
        name="pd_true",
        attrs={
            "units": "see parameter_units",
            "long_name": "partial dependence of the true site parameters (geometric mean "
            "over sites)",
        },  # fmt: skip
    )


def relationship_correlation(
    z_loc: xr.DataArray, world: xr.Dataset, fitted: Mapping[str, bool] | None = None
) -> pd.DataFrame:
    """Correlation of the learned network location with the true relationship, per parameter.

    Parameters
    ----------
    z_loc : xarray.DataArray
        ``(site, parameter)`` learned network location ``f(x)`` of the unconstrained
        parameters (e.g. the posterior mean of a DataTree's ``posterior/z_loc``).
    world : xarray.Dataset
        The synthetic world.
    fitted : mapping of str to bool, optional
        Site -> whether it was fitted; adds the correlations at the fitted and at the
        unseen sites.

    Returns
    -------
    pandas.DataFrame
        Indexed by parameter: ``r`` (every site of ``z_loc``), and with ``fitted``
        ``r_fitted`` and ``r_unseen`` (NaN where fewer than 3 sites), dimensionless.
    """
    names = varying_parameters(world, list(_str(z_loc["parameter"].values)))
    sites = list(_str(z_loc["site"].values))
    true = (world["true_z"] - world["true_z_residual"]).sel(site=sites, parameter=names)
    true = true.transpose("site", "parameter").values
    learned = z_loc.sel(parameter=names).transpose("site", "parameter").values

    def r(mask: np.ndarray, i: int) -> float:
        if mask.sum() < 3:
            return float("nan")
        a, b = learned[mask, i], true[mask, i]
        if np.std(a) == 0 or np.std(b) == 0:
            return float("nan")
        return float(np.corrcoef(a, b)[0, 1])

    every = np.ones(len(sites), bool)
    rows = {p: {"r": r(every, i)} for i, p in enumerate(names)}
    if fitted is not None:
        fit_mask = np.array([bool(fitted.get(s, False)) for s in sites])
        for i, p in enumerate(names):
            rows[p]["r_fitted"] = r(fit_mask, i)
            rows[p]["r_unseen"] = r(~fit_mask, i)
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "parameter"
    return table


def predictive_r2(pred: xr.Dataset, sites: Sequence[str] | None = None) -> dict[str, float]:
    """R² of the posterior predictive mean against the observations, per stream.

    ``R² = 1 - sum (obs - pred)² / sum (obs - mean obs)²`` over every observed
    (site, time) of ``sites``; dimensionless (1 is perfect, 0 is no better than the mean
    of the observations, negative is worse).

    Parameters
    ----------
    pred : xarray.Dataset
        Predictions of :func:`~differland_bayes.bayes.predict_dataset.predict_to_dataset`
        (``<stream>``, ``<stream>_obs``, ``<stream>_mask``).
    sites : sequence of str, optional
        Sites to score (default all of ``pred``).

    Returns
    -------
    dict of str to float
        Stream -> R² (NaN for a stream with fewer than 2 observations there).
    """
    if sites is not None:
        pred = pred.sel(site=list(sites))
    out = {}
    for name in pred.data_vars:
        s = str(name)
        if f"{s}_obs" not in pred or f"{s}_mask" not in pred:
            continue
        mask = np.asarray(pred[f"{s}_mask"].transpose("site", "time").values, bool)
        obs = np.asarray(pred[f"{s}_obs"].transpose("site", "time").values, float)[mask]
        mean = np.asarray(pred[s].transpose("site", "time").values, float)[mask]
        ok = np.isfinite(obs) & np.isfinite(mean)
        obs, mean = obs[ok], mean[ok]
        sst = float(np.sum((obs - obs.mean()) ** 2)) if obs.size else 0.0
        out[s] = 1.0 - float(np.sum((obs - mean) ** 2)) / sst if obs.size > 1 and sst > 0 else (
            float("nan"))  # fmt: skip
    return out


@dataclass(frozen=True)
class TruthComparison:
    """The outcome of :func:`compare_with_truth`.

    Attributes
    ----------
    sites : pandas.DataFrame
        :func:`site_parameter_table`.
    partial_dependence : xarray.Dataset
        The learned partial dependence (``pd_mean``, ``pd_lower``, ``pd_upper``) of the
        varying parameters with ``pd_true`` (:func:`true_partial_dependence`).
    correlation : pandas.DataFrame
        :func:`relationship_correlation`.
    r2_unseen : dict of str to float
        :func:`predictive_r2` at the unseen sites, per stream.
    n_fitted, n_unseen : int
        Number of fitted and unseen sites.
    """

    sites: pd.DataFrame
    partial_dependence: xr.Dataset
    correlation: pd.DataFrame
    r2_unseen: dict[str, float]
    n_fitted: int
    n_unseen: int

    @property
    def parameters(self) -> list[str]:
        """The parameters compared."""
        return list(dict.fromkeys(self.sites["parameter"]))

    def coverage(self, fitted: bool | None = True) -> float:
        """Share of 90 % intervals containing the true value (fitted, unseen or all sites)."""
        rows = self.sites if fitted is None else self.sites[self.sites["fitted"] == fitted]
        return float(rows["covered"].mean()) if len(rows) else float("nan")

    def summary(self) -> dict[str, Any]:
        """Headline numbers (JSON-ready; NaN as None)."""

        def num(x: float) -> float | None:
            return None if x is None or not np.isfinite(x) else round(float(x), 4)

        fit_rows = self.sites[self.sites["fitted"]]
        per_par = fit_rows.groupby("parameter", sort=False)["covered"].mean()
        r = self.correlation["r"]
        r2 = [v for v in self.r2_unseen.values() if np.isfinite(v)]
        return {
            "parameters": self.parameters,
            "sites_fitted": self.n_fitted,
            "sites_unseen": self.n_unseen,
            "interval_mass": PROB,
            "coverage_fitted": num(self.coverage(True)),
            "coverage_unseen": num(self.coverage(False)),
            "coverage_fitted_per_parameter": {p: num(v) for p, v in per_par.items()},
            "r_relationship_mean": num(float(r.mean())),
            "r_relationship_min": num(float(r.min())),
            "r_relationship": {p: num(v) for p, v in r.items()},
            "r_relationship_unseen": (
                {p: num(v) for p, v in self.correlation["r_unseen"].items()}
                if "r_unseen" in self.correlation else {}
            ),
            "r2_unseen_mean": num(float(np.mean(r2))) if r2 else None,
            "r2_unseen": {s: num(v) for s, v in self.r2_unseen.items()},
        }  # fmt: skip

    def partial_dependence_table(self) -> pd.DataFrame:
        """Return the learned and true partial dependence as one long table (physical units)."""
        ds = self.partial_dependence
        rows = []
        for p in _str(ds["parameter"].values):
            for f in _str(ds["feature"].values):
                sel = {"parameter": p, "feature": f}
                rows.append(
                    pd.DataFrame({
                        "parameter": p,
                        "parameter_units": str(ds["parameter_units"].sel(parameter=p).values),
                        "feature": f,
                        "feature_units": str(ds["feature_units"].sel(feature=f).values),
                        "grid_value": ds["grid_value"].sel(feature=f).values,
                        "learned_mean": ds["pd_mean"].sel(sel).values,
                        "learned_lower": ds["pd_lower"].sel(sel).values,
                        "learned_upper": ds["pd_upper"].sel(sel).values,
                        "true": ds["pd_true"].sel(sel).values,
                    })
                )  # fmt: skip
        return pd.concat(rows, ignore_index=True)


def compare_with_truth(
    world: xr.Dataset,
    pred: xr.Dataset,
    theta: xr.DataArray,
    z_loc: xr.DataArray,
    *,
    parameters: Sequence[str] | None = None,
    seed: int = 0,
) -> TruthComparison:
    """Compare a fit of a synthetic world with its truth (see the module docstring).

    Parameters
    ----------
    world : xarray.Dataset
        The synthetic world.
    pred : xarray.Dataset
        Predictions of the fit for the world's sites (``predict_to_dataset`` with the
        quantiles 0.05, 0.5 and 0.95); its ``fitted`` coordinate says which were fitted.
    theta : xarray.DataArray
        ``(sample, site, parameter)`` posterior draws of the site parameters, physical
        units (a DataTree's ``posterior/parameters``); the learned partial dependence
        uses its fitted sites.
    z_loc : xarray.DataArray
        ``(sample, site, parameter)`` or ``(site, parameter)`` network location of the
        unconstrained parameters (a DataTree's ``posterior/z_loc``).
    parameters : sequence of str, optional
        Parameters to compare (default: the fitted ones that vary in the world).
    seed : int
        Seed of the partial dependence's bootstrap weights.

    Returns
    -------
    TruthComparison
        Tables, the partial dependence with the truth, correlations and R².
    """
    from .partial_dependence import partial_dependence

    fitted = dict(zip(_str(pred["site"].values), np.asarray(pred["fitted"].values, bool),
                      strict=True))  # fmt: skip
    sites = site_parameter_table(pred, world, parameters)
    names = list(dict.fromkeys(sites["parameter"]))
    fit_sites = [s for s in _str(theta["site"].values) if fitted.get(s, False)]
    if len(fit_sites) < 3:
        raise ValueError(f"expected at least 3 fitted sites, found {len(fit_sites)}")
    th = theta.sel(site=fit_sites, parameter=names)
    env, feats, veg = _site_env(world, fit_sites)
    env_da = xr.DataArray(
        env, dims=("site", "feature"),
        coords={"site": fit_sites, "feature": feats,
                "feature_units": ("feature", _str(world["feature_units"].values))},
    )  # fmt: skip
    log.info("partial dependence of %d parameter(s) at %d fitted site(s)", len(names),
             len(fit_sites))  # fmt: skip
    pd_ = partial_dependence(th, env_da, veg, prob=PROB, seed=seed)
    pd_ = pd_[["pd_mean", "pd_lower", "pd_upper"]]
    pd_["pd_true"] = true_partial_dependence(world, pd_, fit_sites).drop_vars("parameter_units")
    if "sample" in z_loc.dims:
        z_loc = z_loc.mean("sample")
    correlation = relationship_correlation(z_loc.sel(parameter=names), world, fitted)
    unseen = [s for s, f in fitted.items() if not f]
    r2 = predictive_r2(pred, unseen) if unseen else {}
    return TruthComparison(
        sites=sites, partial_dependence=pd_, correlation=correlation, r2_unseen=r2,
        n_fitted=int(sum(fitted.values())), n_unseen=len(unseen),
    )  # fmt: skip


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _top_features(ds: xr.Dataset, parameter: str, n: int) -> list[str]:
    """Return the ``n`` features along which the true partial dependence varies most."""
    true = ds["pd_true"].sel(parameter=parameter)
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = np.log(true.max("grid")) - np.log(true.min("grid"))
    order = np.argsort(-np.nan_to_num(spread.values, nan=-1.0), kind="stable")
    return [str(ds["feature"].values[i]) for i in order[:n]]


def plot_traits_vs_truth(cmp: TruthComparison, *, n_features: int = 2) -> Figure:
    """Site parameters and learned relationships against the truth: one row per parameter.

    The first column shows every site's posterior median with its 90 % interval against
    the true value (fitted and unseen sites; the dashed line is 1:1); the next
    ``n_features`` columns the learned partial dependence (posterior mean and 90 % band)
    against the true one, along the predictors on which the truth depends most, with the
    fitted sites' predictor values as a rug.

    Parameters
    ----------
    cmp : TruthComparison
        From :func:`compare_with_truth`.
    n_features : int
        Partial-dependence panels per parameter.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (Agg canvas).
    """
    names = cmp.parameters
    ds = cmp.partial_dependence
    n_features = max(0, min(n_features, ds.sizes["feature"]))
    ncols = 1 + n_features
    fig = _figure(3.6 * ncols, 2.9 * len(names) + 0.9)
    axes = fig.subplots(len(names), ncols, squeeze=False)
    for i, p in enumerate(names):
        rows = cmp.sites[cmp.sites["parameter"] == p]
        units = str(rows["units"].iloc[0])
        ax = axes[i, 0]
        for fitted, style in ((True, FITTED_STYLE), (False, UNSEEN_STYLE)):
            r = rows[rows["fitted"] == fitted]
            if not len(r):
                continue
            yerr = np.vstack([r["median"] - r["lower"], r["upper"] - r["median"]])
            ax.errorbar(r["true"], r["median"], yerr=np.clip(yerr, 0, None), fmt="none",
                        ecolor=style["color"], alpha=0.35, lw=0.8)  # fmt: skip
            ax.scatter(r["true"], r["median"], s=14, color=style["color"],
                       marker=style["marker"], label=style["label"], zorder=3)  # fmt: skip
        lo = float(np.nanmin(rows[["true", "lower"]].values))
        hi = float(np.nanmax(rows[["true", "upper"]].values))
        ax.plot([lo, hi], [lo, hi], "--", color="0.4", lw=0.8, label="1:1")
        if lo > 0 and hi / lo > LOG_AXIS_RATIO:
            ax.set_xscale("log")
            ax.set_yscale("log")
        cov = rows.loc[rows["fitted"], "covered"].mean() if rows["fitted"].any() else np.nan
        r_rel = cmp.correlation["r"].get(p, np.nan)
        ax.set_title(f"{p}: coverage {cov:.2f}, r {r_rel:.2f}", fontsize=9)
        ax.set_xlabel(f"true {p} [{units}]")
        ax.set_ylabel(f"posterior {p} [{units}]")
        feats = _top_features(ds, p, n_features)
        for k, f in enumerate(feats):
            ax = axes[i, 1 + k]
            x = ds["grid_value"].sel(feature=f).values
            sel = {"parameter": p, "feature": f}
            band = (ds["pd_lower"].sel(sel), ds["pd_upper"].sel(sel))
            ax.fill_between(
                x, *band, color="tab:blue", alpha=0.25, lw=0, label="learned, 90 % band"
            )
            ax.plot(x, ds["pd_mean"].sel(sel), color="tab:blue", label="learned (mean)")
            ax.plot(x, ds["pd_true"].sel(sel), "--", color="black", lw=1.4, label="truth")
            funits = str(ds["feature_units"].sel(feature=f).values)
            ax.set_xlabel(f"{f} [{funits}]")
            ax.set_ylabel(f"{p} [{units}]")
            ax.set_title(f"partial dependence on {f}", fontsize=9)
        for k in range(len(feats), n_features):
            axes[i, 1 + k].set_visible(False)
    handles, labels = [], []
    for ax in (axes[0, 0], *(axes[0, 1:] if ncols > 1 else ())):
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 6))
    fig.suptitle(
        f"Learned trait–environment relationships vs the truth ({cmp.n_fitted} fitted, "
        f"{cmp.n_unseen} unseen sites)\ncoverage: share of the fitted sites' 90 % intervals "
        "containing the true value; r: correlation of the learned and true relationship\n"
        "across sites; partial dependence: geometric mean over the fitted sites",
        fontsize=9,
    )
    return fig
