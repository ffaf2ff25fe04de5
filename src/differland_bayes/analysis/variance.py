"""How much of the across-site variation of each parameter vegetation classes explain.

For every posterior draw and parameter, the site values (on the analysis scale, ``log``
by default: shares of variance of relative differences) are regressed three ways with
the smoother of :mod:`.trait_regression`:

* on the vegetation-class dummies alone (``R²_C``),
* on the continuous predictors — climate, soil, stand age, ... — alone (``R²_E``),
* on both (``R²_J``),

with R² adjusted by the smoother's effective degrees of freedom (so extra flexibility
explains nothing by itself) and clipped at 0. Commonality analysis splits the variance:

=====================  =============================  ===============================
component              value                          meaning
=====================  =============================  ===============================
``vegetation class``   ``R²_J - R²_E``                only the class explains it
``environment``        ``R²_J - R²_C``                only the continuous predictors
``shared``             ``R²_C + R²_E - R²_J``         either (classes and climate
                                                      overlap); negative = suppression
``residual``           ``1 - R²_J``                   site-level, unexplained
=====================  =============================  ===============================

``class_share`` is the classes' share of the explainable variation, with the overlap
split evenly (the two-group Shapley value): ``(unique_class + shared / 2) / R²_J``;
``p_class_below_half`` is its posterior probability of being below 0.5 (classes explain
less than half of what the environment as a whole explains). ``class_alone_share`` is
``R²_C / R²_J`` (the overlap credited to the classes). Aggregates over parameters are
per-draw means of the parameters' fractions (every parameter weighted alike).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from ._trait_base import (
    DEFAULT_PROB,
    check_prob,
    env_inputs,
    summary_vars,
    theta_inputs,
)
from .trait_regression import AdditiveBasis, bootstrap_weights, fit_ridge

__all__ = ["COMPONENTS", "variance_partition"]

log = logging.getLogger(__name__)

#: the components of the across-site variance, in plotting order
COMPONENTS: tuple[str, ...] = ("vegetation class", "environment", "shared", "residual")


def _r2(y: np.ndarray, e: Any, blocks: dict[str, bool], common: dict[str, Any]) -> np.ndarray:
    basis = AdditiveBasis.build(
        e.values,
        len(e.classes),
        features=e.features,
        n_knots=common["n_knots"],
        use_env=blocks["env"],
        use_class=blocks["class"],
    )
    fit = fit_ridge(
        basis.design(e.values, e.codes), y, penalty=common["penalty"], weights=common["weights"]
    )
    return np.clip(fit.r2(adjusted=common["adjusted"]), 0.0, 1.0)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    ok = den > 1e-12
    return np.where(ok, num / np.where(ok, den, 1.0), np.nan)


def _probability(share: np.ndarray) -> np.ndarray:
    """Fraction of draws with ``share < 0.5`` among draws where it is defined."""
    ok = np.isfinite(share)
    n = ok.sum(axis=0)
    below = ((share < 0.5) & ok).sum(axis=0)
    return np.where(n > 0, below / np.maximum(n, 1), np.nan)


def variance_partition(
    theta: Any,
    env: Any,
    vegetation_class: Any = None,
    *,
    features: Sequence[str] | None = None,
    scale: str = "log",
    n_knots: int = 3,
    adjusted: bool = True,
    penalty: float | None = None,
    site_bootstrap: bool = True,
    seed: int = 0,
    prob: float = DEFAULT_PROB,
) -> xr.Dataset:
    """Variance partitioning of each parameter between classes, environment and sites.

    Parameters
    ----------
    theta : xarray.DataArray
        ``(sample, site, parameter)`` posterior draws of the site parameters (physical).
    env : xarray.DataArray
        ``(site, feature)`` continuous predictors (one-hot class columns are ignored).
    vegetation_class : array_like, optional
        ``(site,)`` class labels (default: decoded from one-hot columns).
    features : sequence of str, optional
        Continuous predictors of the environment block (default all).
    scale : {"log", "linear"}
        Analysis scale.
    n_knots : int
        Spline knots per predictor (0: linear terms only).
    adjusted : bool
        Adjust R² by the effective degrees of freedom (recommended; plain R² credits a
        flexible model with chance fits).
    penalty : float, optional
        Fixed relative ridge penalty (default GCV).
    site_bootstrap : bool
        Bayesian-bootstrap weights of the sites per draw (bands then include the
        uncertainty of having observed these sites; False: posterior uncertainty only).
    seed : int
        Seed of the bootstrap weights.
    prob : float
        Probability mass of the credible bands.

    Returns
    -------
    xarray.Dataset
        ``fraction_{mean,lower,upper}`` (parameter, component) and
        ``fraction_overall_*`` (component), fractions of the across-site variance;
        ``r2_class_*``, ``r2_env_*``, ``r2_joint_*``, ``class_share_*``,
        ``class_alone_share_*`` (parameter) and their ``*_overall_*``;
        ``p_class_below_half`` (parameter) and ``p_class_below_half_overall``.
    """
    prob = check_prob(prob)
    th = theta_inputs(theta, scale=scale)
    e = env_inputs(env, vegetation_class, sites=th.sites, features=features)
    if len(e.classes) < 2:
        log.warning("variance_partition: one vegetation class only; its share is 0")
    n_draw, n_site = th.values.shape[:2]
    common = {
        "n_knots": n_knots,
        "penalty": penalty,
        "adjusted": adjusted,
        "weights": bootstrap_weights(n_draw, n_site, seed) if site_bootstrap else None,
    }
    r2_c = _r2(th.values, e, {"env": False, "class": True}, common)
    r2_e = (
        _r2(th.values, e, {"env": True, "class": False}, common)
        if e.features
        else np.zeros_like(r2_c)
    )
    r2_j = (
        np.maximum(_r2(th.values, e, {"env": True, "class": True}, common), np.maximum(r2_c, r2_e))
        if e.features
        else r2_c
    )  # a joint fit below either single fit is a penalty artefact: at least the better one
    unique_c = r2_j - r2_e
    unique_e = r2_j - r2_c
    shared = r2_c + r2_e - r2_j
    parts = np.stack([unique_c, unique_e, shared, 1.0 - r2_j], axis=-1)  # (draw, par, comp)
    shapley = unique_c + shared / 2.0
    share = _ratio(shapley, r2_j)
    alone = _ratio(r2_c, r2_j)
    with np.errstate(invalid="ignore"):
        mean_p = {k: np.nanmean(v, axis=1) for k, v in {"j": r2_j, "c": r2_c, "s": shapley}.items()}
    overall_share = _ratio(mean_p["s"], mean_p["j"])
    overall_alone = _ratio(mean_p["c"], mean_p["j"])

    frac = "fraction of the across-site variance"
    var: dict[str, xr.DataArray] = {}
    var.update(
        summary_vars("fraction", parts, ("parameter", "component"), prob=prob, units="1",
                     description=frac)
    )  # fmt: skip
    var.update(
        summary_vars("fraction_overall", np.nanmean(parts, axis=1), ("component",), prob=prob,
                     units="1", description=f"{frac}, mean over parameters")
    )  # fmt: skip
    for name, arr, what in (
        ("r2_class", r2_c, "adjusted R² of the class dummies alone"),
        ("r2_env", r2_e, "adjusted R² of the continuous predictors alone"),
        ("r2_joint", r2_j, "adjusted R² of classes and continuous predictors"),
        ("class_share", share, "classes' share of the explainable variance (Shapley)"),
        ("class_alone_share", alone, "R² of the classes alone / joint R²"),
    ):
        var.update(summary_vars(name, arr, ("parameter",), prob=prob, units="1", description=what))
    var.update(
        summary_vars("class_share_overall", overall_share, (), prob=prob, units="1",
                     description="classes' share of the explainable variance, all parameters")
    )  # fmt: skip
    var.update(
        summary_vars("class_alone_share_overall", overall_alone, (), prob=prob, units="1",
                     description="R² of the classes alone / joint R², all parameters")
    )  # fmt: skip
    var["p_class_below_half"] = xr.DataArray(
        _probability(share),
        dims=("parameter",),
        attrs={"units": "1", "description": "P(class_share < 0.5)"},
    )
    var["p_class_alone_below_half"] = xr.DataArray(
        _probability(alone),
        dims=("parameter",),
        attrs={"units": "1", "description": "P(class_alone_share < 0.5)"},
    )
    var["p_class_below_half_overall"] = xr.DataArray(
        _probability(overall_share),
        attrs={"units": "1", "description": "P(class_share_overall < 0.5)"},
    )
    ds = xr.Dataset(
        var,
        coords={
            "parameter": list(th.parameters),
            "component": list(COMPONENTS),
            "parameter_units": ("parameter", list(th.units)),
        },
    )
    ds.attrs.update(
        {
            "analysis": "variance partitioning (commonality analysis)",
            "scale": scale,
            "credible_mass": prob,
            "n_sites": int(n_site),
            "n_draws": int(n_draw),
            "classes": ", ".join(e.classes),
            "features": ", ".join(e.features),
            "adjusted": int(adjusted),
            "site_bootstrap": int(site_bootstrap),
            "n_knots": int(n_knots),
        }
    )
    return ds
