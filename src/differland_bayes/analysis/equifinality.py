"""Equifinality and identifiability: which parameters the data constrain, and which trade off.

* :func:`posterior_correlation` — per site, the correlation between parameters across
  posterior draws (Spearman by default, so the analysis scale does not matter),
  summarised over sites. Parameter pairs with ``|r| > threshold`` at a large fraction of
  the sites are flagged: their data constrain a combination rather than each parameter
  (equifinality).
* :func:`contraction` — posterior-to-prior contraction ``1 - var_post / var_prior`` per
  site and parameter on the analysis scale (``log`` by default: the variance of the
  bounded coordinate of the model's transform, free of the heavy tails of ``z``). 0: the
  data add nothing to the prior; 1: the data pin the parameter down. The prior is a
  sample: e.g. the population prior given the fitted network and ``sigma``
  (:func:`~.trait_network.network_prior_draws`, or the ``prior`` group of a run's tree).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from ._trait_base import theta_inputs

__all__ = ["contraction", "posterior_correlation"]

log = logging.getLogger(__name__)

METHODS = ("spearman", "pearson")


def _ranks(y: np.ndarray) -> np.ndarray:
    """Ranks along axis 0 (ties broken by order; draws of continuous values rarely tie)."""
    return np.argsort(np.argsort(y, axis=0), axis=0).astype(np.float64)


def _site_quantiles(a: np.ndarray, prob: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median and ``prob`` range over the leading (site) axis, ignoring NaN."""
    ok = np.isfinite(a).any(axis=0)
    filled = np.where(ok, a, 0.0)
    q = np.nanquantile(filled, [0.5, (1 - prob) / 2, (1 + prob) / 2], axis=0)
    return tuple(np.where(ok, v, np.nan) for v in q)  # type: ignore[return-value]


def _var(dims: Any, data: np.ndarray, description: str) -> xr.DataArray:
    return xr.DataArray(data, dims=dims, attrs={"units": "1", "description": description})


def _subset(values: np.ndarray, names: tuple[str, ...], parameters: Sequence[str] | None):
    if parameters is None:
        return values, list(names)
    unknown = [p for p in parameters if p not in names]
    if unknown:
        raise ValueError(f"parameters: unknown {unknown}; available {list(names)}")
    idx = [names.index(p) for p in parameters]
    return values[..., idx], list(parameters)


def posterior_correlation(
    theta: Any,
    *,
    parameters: Sequence[str] | None = None,
    method: str = "spearman",
    threshold: float = 0.7,
    min_fraction: float = 0.5,
    scale: str = "log",
    site_prob: float = 0.9,
) -> xr.Dataset:
    """Within-site posterior correlation between parameters, summarised over sites.

    Parameters
    ----------
    theta : xarray.DataArray
        ``(sample, site, parameter)`` posterior draws of the site parameters (physical).
    parameters : sequence of str, optional
        Parameters to include (default all).
    method : {"spearman", "pearson"}
        Rank correlation (invariant to monotone transforms) or linear correlation on
        the analysis scale.
    threshold : float
        ``|r|`` above which a site's pair counts as strongly correlated.
    min_fraction : float
        Fraction of sites with a strong correlation from which a pair is flagged.
    scale : {"log", "linear"}
        Analysis scale (Pearson only).
    site_prob : float
        Mass of the range over sites (``r_lower``, ``r_upper``).

    Returns
    -------
    xarray.Dataset
        ``r_site`` (site, parameter, parameter_2); ``r_median``, ``r_mean``, ``r_lower``,
        ``r_upper``, ``fraction_strong`` and ``flagged`` (parameter, parameter_2);
        attribute ``flagged_pairs``.
    """
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, found {method!r}")
    if not 0.0 < threshold < 1.0 or not 0.0 < min_fraction <= 1.0:
        raise ValueError(
            f"threshold, min_fraction: expected values in (0, 1), found {threshold}, {min_fraction}"
        )
    th = theta_inputs(theta, scale=scale)
    y, names = _subset(th.values, th.parameters, parameters)
    if method == "spearman":
        y = _ranks(y)
    yc = y - y.mean(axis=0)
    sd = np.sqrt((yc**2).sum(axis=0))  # (site, parameter)
    cov = np.einsum("dsi,dsj->sij", yc, yc)
    den = sd[:, :, None] * sd[:, None, :]
    r = np.where(den > 0, cov / np.where(den > 0, den, 1.0), np.nan)
    med, lo, hi = _site_quantiles(r, site_prob)
    ok = np.isfinite(r)
    strong = ((np.abs(np.where(ok, r, 0.0)) > threshold) & ok).sum(axis=0) / np.maximum(
        ok.sum(axis=0), 1
    )
    n_par = len(names)
    off = ~np.eye(n_par, dtype=bool)
    flagged = (strong >= min_fraction) & off
    mean = np.where(ok, r, 0.0).sum(axis=0) / np.maximum(ok.sum(axis=0), 1)
    pairs = [
        f"{names[i]}~{names[j]} (median r {med[i, j]:+.2f}, {100 * strong[i, j]:.0f} % of sites)"
        for i in range(n_par)
        for j in range(i + 1, n_par)
        if flagged[i, j]
    ]
    dims = ("parameter", "parameter_2")
    ds = xr.Dataset(
        {
            "r_site": _var(("site", *dims), r, "posterior correlation across draws"),
            "r_median": _var(dims, med, "median over sites"),
            "r_mean": _var(dims, mean, "mean over sites"),
            "r_lower": _var(dims, lo, f"{100 * (1 - site_prob) / 2:g} % quantile over sites"),
            "r_upper": _var(dims, hi, f"{100 * (1 + site_prob) / 2:g} % quantile over sites"),
            "fraction_strong": _var(dims, strong, f"fraction of sites with |r| > {threshold:g}"),
            "flagged": _var(
                dims, flagged.astype(np.int8), f"1 where fraction_strong >= {min_fraction:g}"
            ),
        },
        coords={"site": th.sites, "parameter": names, "parameter_2": names},
    )
    ds.attrs.update(
        {
            "analysis": "within-site posterior correlation (equifinality)",
            "method": method,
            "threshold": float(threshold),
            "min_fraction": float(min_fraction),
            "site_mass": float(site_prob),
            "flagged_pairs": "; ".join(pairs) if pairs else "none",
        }
    )
    if pairs:
        log.info("equifinal parameter pairs: %s", "; ".join(pairs))
    return ds


def _prior_array(prior: Any, sites: np.ndarray, parameters: tuple[str, ...]) -> xr.DataArray:
    """Prior draws as ``(sample, site, parameter)``, one prior broadcast to every site."""
    if not isinstance(prior, xr.DataArray):
        arr = np.asarray(prior, dtype=np.float64)
        if arr.ndim not in (2, 3) or arr.shape[-1] != len(parameters):
            raise ValueError(
                f"prior: expected dims (sample, [site,] parameter) with {len(parameters)} "
                f"parameters, found shape {arr.shape}"
            )
        dims = ("sample", "parameter") if arr.ndim == 2 else ("sample", "site", "parameter")
        prior = xr.DataArray(arr, dims=dims, coords={"parameter": list(parameters)})
    if "site" not in prior.dims:
        prior = prior.expand_dims(site=len(sites))
    if prior.sizes["site"] != len(sites):
        raise ValueError(
            f"prior: expected {len(sites)} sites (as posterior), found {prior.sizes['site']}"
        )
    return prior.drop_vars("site", errors="ignore").assign_coords(site=sites)


def contraction(
    posterior: Any,
    prior: Any,
    *,
    parameters: Sequence[str] | None = None,
    scale: str = "log",
    site_prob: float = 0.9,
) -> xr.Dataset:
    """Posterior-to-prior contraction ``1 - var_post / var_prior`` of every parameter.

    Parameters
    ----------
    posterior : xarray.DataArray
        ``(sample, site, parameter)`` posterior draws (physical for ``scale="log"``).
    prior : xarray.DataArray or array_like
        Prior draws in the same units: ``(sample, site, parameter)`` for the same
        sites, or ``(sample, parameter)`` (one prior for every site); sample counts may
        differ. Parameters matched by name (a plain array: the posterior's order).
    parameters : sequence of str, optional
        Parameters to include (default all of ``posterior``).
    scale : {"log", "linear"}
        Scale of the variances.
    site_prob : float
        Mass of the range over sites.

    Returns
    -------
    xarray.Dataset
        ``contraction_site`` (site, parameter); ``contraction_median``, ``_mean``,
        ``_lower``, ``_upper`` over sites and ``contraction_pooled`` (``1 -`` mean
        posterior variance / mean prior variance) per parameter.
    """
    post = theta_inputs(posterior, scale=scale, name="posterior")
    pri = theta_inputs(_prior_array(prior, post.sites, post.parameters), scale=scale, name="prior")
    y_post, names = _subset(post.values, post.parameters, parameters)
    missing = [p for p in names if p not in pri.parameters]
    if missing:
        raise ValueError(f"prior: expected the parameters {names}, missing {missing}")
    y_pri = pri.values[..., [pri.parameters.index(p) for p in names]]
    v_post = y_post.var(axis=0, ddof=1)
    v_pri = y_pri.var(axis=0, ddof=1)
    c = np.where(v_pri > 0, 1.0 - v_post / np.where(v_pri > 0, v_pri, 1.0), np.nan)
    med, lo, hi = _site_quantiles(c, site_prob)
    ok = np.isfinite(c)
    mean = np.where(ok, c, 0.0).sum(axis=0) / np.maximum(ok.sum(axis=0), 1)
    m_pri = v_pri.mean(axis=0)
    pooled = np.where(m_pri > 0, 1.0 - v_post.mean(axis=0) / np.where(m_pri > 0, m_pri, 1), np.nan)
    what = "1 - posterior variance / prior variance"
    p = ("parameter",)
    ds = xr.Dataset(
        {
            "contraction_site": _var(("site", "parameter"), c, what),
            "contraction_median": _var(p, med, f"{what}, median over sites"),
            "contraction_mean": _var(p, mean, f"{what}, mean over sites"),
            "contraction_lower": _var(
                p, lo, f"{100 * (1 - site_prob) / 2:g} % quantile over sites"
            ),
            "contraction_upper": _var(
                p, hi, f"{100 * (1 + site_prob) / 2:g} % quantile over sites"
            ),
            "contraction_pooled": _var(p, pooled, "1 - mean posterior / mean prior variance"),
        },
        coords={
            "site": post.sites,
            "parameter": names,
            "parameter_units": ("parameter", [post.units[post.parameters.index(n)] for n in names]),
        },
    )
    ds.attrs.update(
        {
            "analysis": "posterior-to-prior contraction",
            "scale": scale,
            "site_mass": float(site_prob),
        }
    )
    return ds
