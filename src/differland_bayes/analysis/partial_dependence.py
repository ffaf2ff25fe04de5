"""Partial dependence of each site parameter on each environment variable, per draw.

The partial dependence of parameter ``p`` on predictor ``j`` at value ``g`` is the mean
over sites of the predicted parameter with ``x_sj`` set to ``g`` and every other
predictor (and the class) held at the site's observed values. Each is computed per
posterior draw and summarised into a posterior mean and a credible band, overall and
per vegetation class (the mean over that class's sites), and two ways:

* :func:`partial_dependence` — driven by the **posterior site parameters**: per draw, a
  penalised additive regression of the site values on the environment
  (:mod:`.trait_regression`; one smoother for every draw, so the band is the posterior
  uncertainty of the site parameters). This works for point-estimated networks too,
  whose weights carry no uncertainty. Additive: without ``class_slopes`` the curves
  of the classes are parallel.
* :func:`partial_dependence_network` — through the **prior network** ``prior_mean``,
  one curve per weight draw (a single curve for point-estimated weights); the classes'
  curves may differ in shape.

Values are averaged over sites on the analysis scale (``log`` by default) and reported
back-transformed to physical units (on the log scale: the geometric mean over sites);
``slope`` is the least-squares slope of the curve on the analysis scale per unit of the
predictor, and ``class_level`` the partial dependence on the class itself (every site
assigned class ``c``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import xarray as xr

from ._trait_base import (
    CLASS_PREFIX,
    DEFAULT_PROB,
    EnvInputs,
    check_prob,
    env_inputs,
    scale_units,
    summary_vars,
    theta_inputs,
    transform,
)
from .trait_network import network_inputs
from .trait_regression import AdditiveBasis, bootstrap_weights, fit_ridge

__all__ = ["feature_grid", "partial_dependence", "partial_dependence_network"]

log = logging.getLogger(__name__)


def feature_grid(
    x: np.ndarray, grid_size: int = 20, grid_range: tuple[float, float] = (0.05, 0.95)
) -> np.ndarray:
    """Evenly spaced values ``(feature, grid)`` between two quantiles of each column.

    Parameters
    ----------
    x : numpy.ndarray
        ``(site, feature)`` observed predictors.
    grid_size : int
        Number of values per predictor (>= 2).
    grid_range : tuple of float
        Quantiles of the observed values at the ends (avoids extrapolating into the
        sparse tails).
    """
    if grid_size < 2:
        raise ValueError(f"grid_size: expected an integer >= 2, found {grid_size}")
    lo_q, hi_q = grid_range
    if not 0.0 <= lo_q < hi_q <= 1.0:
        raise ValueError(f"grid_range: expected 0 <= low < high <= 1, found {grid_range}")
    lo, hi = np.quantile(np.asarray(x, dtype=np.float64), [lo_q, hi_q], axis=0)
    return np.linspace(lo, hi, grid_size).T


def _slope(grid: np.ndarray, curves: np.ndarray) -> np.ndarray:
    """Least-squares slope of ``curves (..., feature, grid)`` against ``grid``."""
    g = grid - grid.mean(axis=1, keepdims=True)
    var = (g**2).sum(axis=1)
    cov = (curves * g).sum(axis=-1)
    return np.where(var > 0, cov / np.where(var > 0, var, 1.0), np.nan)


def _dataset(
    *,
    pd_all: np.ndarray,
    pd_class: Iterable[np.ndarray],
    level: np.ndarray,
    grid: np.ndarray,
    parameters: Sequence[str],
    units: Sequence[str],
    e: EnvInputs,
    scale: str,
    prob: float,
    attrs: dict[str, Any],
) -> xr.Dataset:
    """Assemble the dataset of draws ``pd_all (draw, parameter, feature, grid)``."""
    dims = ("parameter", "feature", "grid")
    var: dict[str, xr.DataArray] = {}
    what = "partial dependence (mean over sites"
    var.update(
        summary_vars("pd", pd_all, dims, prob=prob, units="parameter_units",
                     description=f"{what})", back=scale)
    )  # fmt: skip
    per_class = [
        summary_vars("pd_class", d, dims, prob=prob, units="parameter_units",
                     description=f"{what} of the class)", back=scale)
        for d in pd_class
    ]  # fmt: skip
    for name in per_class[0]:
        var[name] = xr.concat([pc[name] for pc in per_class], dim="class")
    var.update(
        summary_vars("class_level", level, ("parameter", "class"), prob=prob,
                     units="parameter_units", back=scale,
                     description="partial dependence on the vegetation class (every site "
                     "assigned the class)")
    )  # fmt: skip
    var.update(
        summary_vars("slope", _slope(grid, pd_all), ("parameter", "feature"), prob=prob,
                     units=f"{scale_units('parameter_units', scale)} per feature_units",
                     description="least-squares slope of the partial dependence on the "
                     f"{scale} scale")
    )  # fmt: skip
    counts = np.bincount(e.codes, minlength=len(e.classes))
    coords = {
        "parameter": list(parameters),
        "feature": list(e.features),
        "grid": np.arange(grid.shape[1]),
        "class": list(e.classes),
        "grid_value": (("feature", "grid"), grid, {"description": "predictor value"}),
        "parameter_units": ("parameter", list(units)),
        "feature_units": ("feature", list(e.units)),
        "class_sites": ("class", counts, {"description": "number of sites of the class"}),
    }
    ds = xr.Dataset(var, coords=coords)
    ds.attrs.update(
        {
            "analysis": "partial dependence",
            "scale": scale,
            "credible_mass": prob,
            "n_sites": int(len(e.codes)),
            "n_draws": int(pd_all.shape[0]),
            **attrs,
        }
    )
    return ds


def partial_dependence(
    theta: Any,
    env: Any,
    vegetation_class: Any = None,
    *,
    features: Sequence[str] | None = None,
    grid_size: int = 20,
    grid_range: tuple[float, float] = (0.05, 0.95),
    scale: str = "log",
    n_knots: int = 3,
    class_slopes: bool = False,
    penalty: float | None = None,
    site_bootstrap: bool = True,
    seed: int = 0,
    prob: float = DEFAULT_PROB,
) -> xr.Dataset:
    """Partial dependence per posterior draw of the site parameters (regression).

    Parameters
    ----------
    theta : xarray.DataArray
        ``(sample, site, parameter)`` posterior draws of the site parameters, physical
        units (``parameter_units`` coordinate).
    env : xarray.DataArray
        ``(site, feature)`` predictors (``feature_units`` coordinate); one-hot class
        columns are ignored as predictors.
    vegetation_class : array_like, optional
        ``(site,)`` class labels (default: decoded from one-hot columns, else one class).
    features : sequence of str, optional
        Predictors to analyse (default: every continuous column).
    grid_size, grid_range
        Grid of each predictor (:func:`feature_grid`).
    scale : {"log", "linear"}
        Analysis scale (``linear`` for values that may be negative).
    n_knots : int
        Spline knots per predictor (0: linear).
    class_slopes : bool
        Let each class have its own linear slope on every predictor.
    penalty : float, optional
        Fixed relative ridge penalty (default: GCV, see :func:`.fit_ridge`).
    site_bootstrap : bool
        Weight the sites of each draw's fit by Bayesian-bootstrap weights, so that the
        bands also carry the uncertainty of having observed these sites (otherwise a
        chance correlation of the sites' own deviations with a predictor shows as a
        confident effect); False gives the posterior uncertainty alone.
    seed : int
        Seed of the bootstrap weights.
    prob : float
        Probability mass of the credible bands.

    Returns
    -------
    xarray.Dataset
        ``pd_{mean,lower,upper}`` (parameter, feature, grid), ``pd_class_*`` (class,
        parameter, feature, grid), ``class_level_*`` (parameter, class), physical units;
        ``slope_*`` (parameter, feature); ``penalty`` and ``df`` of the smoother
        (parameter); coordinates ``grid_value`` (feature, grid), units, ``class_sites``.
    """
    prob = check_prob(prob)
    th = theta_inputs(theta, scale=scale)
    e = env_inputs(env, vegetation_class, sites=th.sites, features=features)
    if not e.features:
        raise ValueError("env: expected at least one continuous predictor, found none")
    basis = AdditiveBasis.build(
        e.values, len(e.classes), features=e.features, n_knots=n_knots, class_slopes=class_slopes
    )
    n_draw, n_site = th.values.shape[:2]
    weights = bootstrap_weights(n_draw, n_site, seed) if site_bootstrap else None
    fit = fit_ridge(basis.design(e.values, e.codes), th.values, penalty=penalty, weights=weights)
    grid = feature_grid(e.values, grid_size, grid_range)
    n_f, n_g = grid.shape
    n_c = len(e.classes)
    ncol = fit.x_mean.shape[1]
    rows_all = np.empty((n_f, n_g, ncol))
    rows_class = np.empty((n_c, n_f, n_g, ncol))
    for j in range(n_f):
        for g in range(n_g):
            x = e.values.copy()
            x[:, j] = grid[j, g]
            d = basis.design(x, e.codes)
            rows_all[j, g] = d.mean(axis=0)
            for c in range(n_c):
                rows_class[c, j, g] = d[e.codes == c].mean(axis=0)
    level_rows = np.stack(
        [basis.design(e.values, np.full(len(e.codes), c)).mean(axis=0) for c in range(n_c)]
    )

    offset = fit.y_mean - np.einsum("dk,pdk->dp", fit.x_mean, fit.coef)

    def curves(rows: np.ndarray) -> np.ndarray:  # (draw, parameter, ...)
        flat = rows.reshape(-1, rows.shape[-1])  # (m, k)
        out = (fit.coef @ flat.T).transpose(1, 0, 2)  # (draw, parameter, m)
        out = out.reshape(out.shape[:2] + rows.shape[:-1])
        return out + offset.reshape(offset.shape + (1,) * (rows.ndim - 1))

    ds = _dataset(
        pd_all=curves(rows_all),
        pd_class=(curves(rows_class[c]) for c in range(n_c)),  # one class at a time
        level=curves(level_rows),
        grid=grid,
        parameters=th.parameters,
        units=th.units,
        e=e,
        scale=scale,
        prob=prob,
        attrs={
            "method": "per-draw penalised additive regression (linear splines, class "
            "dummies, ridge penalty by GCV) of the posterior site parameters",
            "n_knots": int(n_knots),
            "class_slopes": int(class_slopes),
            "site_bootstrap": int(site_bootstrap),
        },
    )
    ds["penalty"] = ("parameter", fit.lam, {"description": "ridge penalty of the smoother"})
    ds["df"] = ("parameter", fit.df.mean(axis=0), {"description": "effective degrees of freedom"})
    return ds


def partial_dependence_network(
    prior_mean: Any,
    env: Any,
    vegetation_class: Any = None,
    *,
    features: Sequence[str] | None = None,
    num_draws: int | None = None,
    grid_size: int = 20,
    grid_range: tuple[float, float] = (0.05, 0.95),
    scale: str = "log",
    env_mean: Any = None,
    env_sd: Any = None,
    parameter_names: Sequence[str] | None = None,
    parameter_units: Sequence[str] | None = None,
    prob: float = DEFAULT_PROB,
) -> xr.Dataset:
    """Partial dependence of the prior network's location, per weight draw.

    Parameters
    ----------
    prior_mean : callable
        ``prior_mean(x_std (n, n_features), draw) -> (n, n_parameters)``, e.g. a
        :class:`~.trait_network.NetworkPriorMean` (which encodes ``env`` and the classes
        itself); its values must be physical for ``scale="log"``.
    env : xarray.DataArray
        ``(site, feature)`` raw predictors of the sites whose observed values are held.
        For a plain callable: exactly its input columns (one-hot classes included).
    vegetation_class : array_like, optional
        ``(site,)`` labels (needed by a ``NetworkPriorMean`` unless ``env`` has the
        one-hot columns).
    features : sequence of str, optional
        Continuous predictors to vary (default all).
    num_draws : int, optional
        Weight draws to use (default ``prior_mean.num_draws``, else 1).
    grid_size, grid_range
        Grid of each predictor (:func:`feature_grid`).
    scale : {"log", "linear"}
        Averaging scale over sites.
    env_mean, env_sd : array_like, optional
        Standardisation of a plain callable's inputs (default: ``env`` is standardised).
    parameter_names, parameter_units : sequence of str, optional
        Output names / units (default from ``prior_mean.parameters`` /
        ``prior_mean.parameter_units``).
    prob : float
        Probability mass of the credible bands.

    Returns
    -------
    xarray.Dataset
        The layout of :func:`partial_dependence` (without ``penalty``/``df``).
    """
    prob = check_prob(prob)
    x_raw, names, mean, sd = network_inputs(
        prior_mean, env, vegetation_class, env_mean=env_mean, env_sd=env_sd
    )
    labelled = xr.DataArray(x_raw, dims=("site", "feature"), coords={"feature": list(names)})
    if isinstance(env, xr.DataArray) and "feature_units" in env.coords:
        known = dict(
            zip(map(str, env["feature"].values), map(str, env["feature_units"].values), strict=True)
        )
        labelled = labelled.assign_coords(
            feature_units=("feature", [known.get(f, "1") for f in names])
        )
    e = env_inputs(labelled, vegetation_class, features=features)
    cols = [names.index(f) for f in e.features]
    class_cols = [i for i, f in enumerate(names) if f.startswith(CLASS_PREFIX)]
    n_draw = int(num_draws or getattr(prior_mean, "num_draws", 1))
    pars = tuple(parameter_names or getattr(prior_mean, "parameters", ()))
    units = tuple(parameter_units or getattr(prior_mean, "parameter_units", ()))
    grid = feature_grid(e.values, grid_size, grid_range)
    n_s, n_g, n_c = x_raw.shape[0], grid.shape[1], len(e.classes)

    def evaluate(x: np.ndarray, draw: int) -> np.ndarray:
        out = np.asarray(prior_mean((x - mean) / sd, draw), dtype=np.float64)
        if out.ndim != 2 or out.shape[0] != x.shape[0]:
            raise ValueError(f"prior_mean: expected shape ({x.shape[0]}, P), found {out.shape}")
        return transform(out, scale, what="prior_mean")

    pd_all, pd_class, level = [], [], []
    for d in range(n_draw):
        per_f = []
        for k, j in enumerate(cols):
            x = np.repeat(x_raw[None], n_g, axis=0)
            x[:, :, j] = grid[k][:, None]
            per_f.append(evaluate(x.reshape(n_g * n_s, -1), d).reshape(n_g, n_s, -1))
        stacked = np.stack(per_f)  # (feature, grid, site, parameter)
        pd_all.append(stacked.mean(axis=2).transpose(2, 0, 1))
        pd_class.append(
            np.stack([stacked[:, :, e.codes == c].mean(axis=2) for c in range(n_c)]).transpose(
                0, 3, 1, 2
            )
        )
        lev = []
        for c in e.classes:
            x = x_raw.copy()
            x[:, class_cols] = [float(names[i] == CLASS_PREFIX + c) for i in class_cols]
            lev.append(evaluate(x, d).mean(axis=0))
        level.append(np.stack(lev, axis=1))
    if not pars:
        pars = tuple(f"p{i}" for i in range(pd_all[0].shape[0]))
    if not units:
        units = ("1",) * len(pars)
    pd_class_arr = np.stack(pd_class)  # (draw, class, parameter, feature, grid)
    return _dataset(
        pd_all=np.stack(pd_all),
        pd_class=(pd_class_arr[:, c] for c in range(n_c)),
        level=np.stack(level),
        grid=grid,
        parameters=pars,
        units=units,
        e=e,
        scale=scale,
        prob=prob,
        attrs={
            "method": "prior network location, one curve per weight draw"
            + (" (point-estimated weights: no band)" if n_draw == 1 else ""),
        },
    )
