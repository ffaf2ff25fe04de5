"""Importance of each environment variable for each parameter (permutation importance).

A predictor's importance is how much a model's predictions of a parameter change when
that predictor's values are shuffled among the sites (breaking its link to everything
else), per posterior draw, averaged over ``n_repeats`` shuffles::

    importance = mean_s (f(x_perm)_s - f(x)_s)^2 / (2 * var_s(target))

On the analysis scale (``log`` by default). For an additive function of independent
predictors this is the share of the target's across-site variance that the predictor
accounts for (so importances add up to about the explained share), and 0 for a
predictor the function ignores. The vegetation class is one predictor (its dummies are
shuffled together).

* :func:`permutation_importance` — ``f`` is the per-draw penalised additive regression of
  the posterior site parameters (:mod:`.trait_regression`), the target the draw's site
  parameters: bands carry the posterior uncertainty of the site parameters (and, with
  ``site_bootstrap``, of having observed these sites).
* :func:`permutation_importance_network` — ``f`` is the prior network's location, one
  per weight draw; the target its own across-site variation.

``p_most_important`` is the posterior probability that a predictor is the most important
one for the parameter.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from ._trait_base import (
    CLASS_FEATURE,
    CLASS_PREFIX,
    DEFAULT_PROB,
    check_prob,
    env_inputs,
    summary_vars,
    theta_inputs,
    transform,
)
from .trait_network import network_inputs
from .trait_regression import AdditiveBasis, bootstrap_weights, fit_ridge

__all__ = ["permutation_importance", "permutation_importance_network"]

log = logging.getLogger(__name__)


def _top_probability(imp: np.ndarray) -> np.ndarray:
    """``(parameter, feature)`` fraction of draws in which the feature ranks first."""
    top = np.argmax(np.where(np.isfinite(imp), imp, -np.inf), axis=-1)  # (draw, parameter)
    return (top[..., None] == np.arange(imp.shape[-1])).mean(axis=0)


def _dataset(imp: np.ndarray, parameters, units, features, prob: float, attrs: dict) -> xr.Dataset:
    var = summary_vars(
        "importance", imp, ("parameter", "feature"), prob=prob, units="1",
        description="permutation importance (share of across-site variance)",
    )  # fmt: skip
    var["p_most_important"] = xr.DataArray(
        _top_probability(imp),
        dims=("parameter", "feature"),
        attrs={"units": "1", "description": "posterior probability of ranking first"},
    )
    ds = xr.Dataset(
        var,
        coords={
            "parameter": list(parameters),
            "feature": list(features),
            "parameter_units": ("parameter", list(units)),
        },
    )
    ds.attrs.update({"analysis": "permutation importance", "credible_mass": prob, **attrs})
    return ds


def permutation_importance(
    theta: Any,
    env: Any,
    vegetation_class: Any = None,
    *,
    features: Sequence[str] | None = None,
    scale: str = "log",
    n_repeats: int = 5,
    n_knots: int = 3,
    class_slopes: bool = False,
    penalty: float | None = None,
    site_bootstrap: bool = True,
    seed: int = 0,
    prob: float = DEFAULT_PROB,
) -> xr.Dataset:
    """Permutation importance on the per-draw regression of the site parameters.

    Parameters
    ----------
    theta : xarray.DataArray
        ``(sample, site, parameter)`` posterior draws of the site parameters (physical).
    env : xarray.DataArray
        ``(site, feature)`` predictors (one-hot class columns are not predictors).
    vegetation_class : array_like, optional
        ``(site,)`` labels (default: decoded from one-hot columns); with two or more
        classes the class is a predictor named ``vegetation_class``.
    features : sequence of str, optional
        Continuous predictors (default all).
    scale : {"log", "linear"}
        Analysis scale.
    n_repeats : int
        Shuffles per predictor (the same shuffles for every draw).
    n_knots, class_slopes, penalty
        The smoother (:func:`.partial_dependence`).
    site_bootstrap : bool
        Bayesian-bootstrap site weights per draw.
    seed : int
        Seed of the shuffles and the bootstrap weights.
    prob : float
        Probability mass of the credible bands.

    Returns
    -------
    xarray.Dataset
        ``importance_{mean,lower,upper}`` and ``p_most_important`` (parameter, feature);
        ``r2_{mean,lower,upper}`` (parameter) of the regression for context.
    """
    prob = check_prob(prob)
    if n_repeats < 1:
        raise ValueError(f"n_repeats: expected an integer >= 1, found {n_repeats}")
    th = theta_inputs(theta, scale=scale)
    e = env_inputs(env, vegetation_class, sites=th.sites, features=features)
    n_draw, n_site = th.values.shape[:2]
    use_class = len(e.classes) > 1
    basis = AdditiveBasis.build(
        e.values, len(e.classes), features=e.features, n_knots=n_knots,
        use_class=use_class, class_slopes=class_slopes,
    )  # fmt: skip
    x0 = basis.design(e.values, e.codes)
    weights = bootstrap_weights(n_draw, n_site, seed + 1) if site_bootstrap else None
    fit = fit_ridge(x0, th.values, penalty=penalty, weights=weights)
    w = np.ones((n_draw, n_site)) if weights is None else weights / weights.mean(axis=1)[:, None]
    var_y = fit.tss / n_site  # (draw, parameter), weighted
    groups = list(e.features) + ([CLASS_FEATURE] if use_class else [])
    rng = np.random.default_rng(seed)
    imp = np.zeros((n_draw, len(th.parameters), len(groups)))
    for _ in range(n_repeats):
        for g, name in enumerate(groups):
            perm = rng.permutation(n_site)
            x, codes = e.values.copy(), e.codes
            if name == CLASS_FEATURE:
                codes = e.codes[perm]
            else:
                j = e.features.index(name)
                x[:, j] = x[perm, j]
            dx = basis.design(x, codes) - x0
            cols = np.flatnonzero(np.any(dx != 0, axis=0))  # the shuffled predictor's
            dy = fit.coef[:, :, cols] @ dx[:, cols].T  # (parameter, draw, site)
            msd = np.einsum("dn,pdn->dp", w, dy**2) / n_site
            imp[:, :, g] += np.where(var_y > 0, msd / (2 * np.where(var_y > 0, var_y, 1)), np.nan)
    imp /= n_repeats
    ds = _dataset(
        imp, th.parameters, th.units, groups, prob,
        {
            "method": "per-draw penalised additive regression of the posterior site parameters",
            "scale": scale, "n_repeats": int(n_repeats), "n_draws": int(n_draw),
            "n_sites": int(n_site), "site_bootstrap": int(site_bootstrap),
        },
    )  # fmt: skip
    ds.update(
        summary_vars("r2", fit.r2(adjusted=True), ("parameter",), prob=prob, units="1",
                     description="adjusted R² of the regression")
    )  # fmt: skip
    return ds


def permutation_importance_network(
    prior_mean: Any,
    env: Any,
    vegetation_class: Any = None,
    *,
    features: Sequence[str] | None = None,
    num_draws: int | None = None,
    scale: str = "log",
    n_repeats: int = 5,
    seed: int = 0,
    env_mean: Any = None,
    env_sd: Any = None,
    parameter_names: Sequence[str] | None = None,
    parameter_units: Sequence[str] | None = None,
    prob: float = DEFAULT_PROB,
) -> xr.Dataset:
    """Permutation importance on the prior network, per weight draw.

    Parameters
    ----------
    prior_mean : callable
        ``prior_mean(x_std, draw) -> (n, n_parameters)`` (e.g. a
        :class:`~.trait_network.NetworkPriorMean`); physical values for ``scale="log"``.
    env : xarray.DataArray
        ``(site, feature)`` raw predictors of the sites (see
        :func:`.partial_dependence_network`).
    vegetation_class : array_like, optional
        ``(site,)`` labels.
    features : sequence of str, optional
        Continuous predictors to shuffle (default all); the one-hot class columns are
        shuffled together as ``vegetation_class`` when present.
    num_draws : int, optional
        Weight draws (default ``prior_mean.num_draws``, else 1).
    scale : {"log", "linear"}
        Analysis scale.
    n_repeats : int
        Shuffles per predictor.
    seed : int
        Seed of the shuffles.
    env_mean, env_sd : array_like, optional
        Standardisation of a plain callable's inputs (default: ``env`` is standardised).
    parameter_names, parameter_units : sequence of str, optional
        Output names / units (default from ``prior_mean``).
    prob : float
        Probability mass of the credible bands.

    Returns
    -------
    xarray.Dataset
        ``importance_{mean,lower,upper}`` and ``p_most_important`` (parameter, feature).
    """
    prob = check_prob(prob)
    if n_repeats < 1:
        raise ValueError(f"n_repeats: expected an integer >= 1, found {n_repeats}")
    x_raw, names, mean, sd = network_inputs(
        prior_mean, env, vegetation_class, env_mean=env_mean, env_sd=env_sd
    )
    labelled = xr.DataArray(x_raw, dims=("site", "feature"), coords={"feature": list(names)})
    e = env_inputs(labelled, vegetation_class, features=features)
    groups = [[names.index(f)] for f in e.features]
    labels = list(e.features)
    class_cols = [i for i, f in enumerate(names) if f.startswith(CLASS_PREFIX)]
    if class_cols:
        groups.append(class_cols)
        labels.append(CLASS_FEATURE)
    n_site = x_raw.shape[0]
    rng = np.random.default_rng(seed)
    perms = [[rng.permutation(n_site) for _ in groups] for _ in range(n_repeats)]
    batch = [x_raw]
    for r in range(n_repeats):
        for g, cols in enumerate(groups):
            x = x_raw.copy()
            x[:, cols] = x_raw[perms[r][g]][:, cols]
            batch.append(x)
    stacked = np.concatenate(batch)
    n_draw = int(num_draws or getattr(prior_mean, "num_draws", 1))
    imp = []
    for d in range(n_draw):
        out = np.asarray(prior_mean((stacked - mean) / sd, d), dtype=np.float64)
        f = transform(out, scale, what="prior_mean").reshape(
            1 + n_repeats * len(groups), n_site, -1
        )
        var0 = f[0].var(axis=0)
        msd = ((f[1:] - f[0]) ** 2).mean(axis=1).reshape(n_repeats, len(groups), -1).mean(axis=0)
        imp.append(np.where(var0 > 0, msd / (2 * np.where(var0 > 0, var0, 1.0)), np.nan).T)
    imp_arr = np.stack(imp)  # (draw, parameter, feature)
    n_par = imp_arr.shape[1]
    pars = tuple(parameter_names or getattr(prior_mean, "parameters", ())) or tuple(
        f"p{i}" for i in range(n_par)
    )
    units = tuple(parameter_units or getattr(prior_mean, "parameter_units", ())) or ("1",) * n_par
    return _dataset(
        imp_arr, pars, units, labels, prob,
        {
            "method": "prior network location, one importance per weight draw"
            + (" (point-estimated weights: no band)" if n_draw == 1 else ""),
            "scale": scale, "n_repeats": int(n_repeats), "n_draws": int(n_draw),
            "n_sites": int(n_site),
        },
    )  # fmt: skip
