"""Shared inputs and summaries of the trait–environment analyses (private helpers).

The analyses take what an ArviZ tree of a run provides: posterior site parameters
``theta`` (``sample, site, parameter``; physical units), the environment ``env``
(``site, feature``; optional ``feature_units`` coordinate) and the vegetation class of
every site. This module checks and converts them, applies the analysis scale and
summarises per-draw results into a mean and an equal-tailed credible band.

Scales: ``"log"`` analyses ``log(theta)`` (every parameter of a DALEC table is positive;
``log(theta)`` is an affine function of the bounded coordinate ``arctan(z) / pi + 0.5``
of the model's transform, so it is bounded and free of the heavy tails of ``z``);
``"linear"`` analyses the values as given (e.g. unconstrained ``z``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

__all__ = [
    "CLASS_FEATURE",
    "CLASS_PREFIX",
    "DEFAULT_PROB",
    "SCALES",
    "EnvInputs",
    "ThetaInputs",
    "back_transform",
    "check_prob",
    "check_scale",
    "class_codes",
    "draw_summary",
    "env_inputs",
    "scale_units",
    "summary_vars",
    "theta_inputs",
    "transform",
]

log = logging.getLogger(__name__)

#: prefix of the one-hot vegetation-class columns of ``dataset.env_matrix``
CLASS_PREFIX = "vegetation_class="
#: name under which the vegetation class appears as one predictor (importance, PD)
CLASS_FEATURE = "vegetation_class"
#: analysis scales
SCALES = ("log", "linear")
#: default probability mass of credible bands (5–95 %)
DEFAULT_PROB = 0.9


def check_scale(scale: str) -> str:
    """Return ``scale`` if it is one of :data:`SCALES`, else raise ``ValueError``."""
    if scale not in SCALES:
        raise ValueError(f"scale: expected one of {SCALES}, found {scale!r}")
    return scale


def check_prob(prob: float) -> float:
    """Return ``prob`` if it is in ``(0, 1)``, else raise ``ValueError``."""
    if not 0.0 < float(prob) < 1.0:
        raise ValueError(f"prob: expected a number in (0, 1), found {prob!r}")
    return float(prob)


def transform(values: np.ndarray, scale: str, *, what: str = "theta") -> np.ndarray:
    """Values on the analysis scale (``log`` needs positive finite values)."""
    check_scale(scale)
    values = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{what}: expected finite values, found NaN or inf")
    if scale == "linear":
        return values
    if np.any(values <= 0):
        raise ValueError(
            f"{what}: scale='log' expects positive values (physical parameters), found "
            f"min {values.min():g}; pass scale='linear' for unconstrained values"
        )
    return np.log(values)


def back_transform(values: np.ndarray, scale: str) -> np.ndarray:
    """Inverse of :func:`transform`."""
    return np.exp(values) if check_scale(scale) == "log" else np.asarray(values)


def scale_units(units: str, scale: str) -> str:
    """Units of a quantity on the analysis scale (``log(...)`` of the physical units)."""
    return f"log({units})" if scale == "log" else units


@dataclass(frozen=True)
class ThetaInputs:
    """Checked posterior site parameters on the analysis scale."""

    values: np.ndarray  #: ``(sample, site, parameter)`` on the analysis scale
    parameters: tuple[str, ...]  #: parameter names
    units: tuple[str, ...]  #: physical units of each parameter
    sites: np.ndarray  #: site labels
    scale: str  #: the analysis scale


def _units_of(da: xr.DataArray, dim: str, n: int, override: Sequence[str] | None) -> tuple:
    if override is not None:
        units = tuple(str(u) for u in override)
    else:
        for name in (f"{dim}_units", "units"):
            if name in da.coords and da.coords[name].dims == (dim,):
                units = tuple(str(u) for u in da.coords[name].values)
                break
        else:
            units = ("1",) * n
    if len(units) != n:
        raise ValueError(f"{dim}_units: expected {n} entries (one per {dim}), found {len(units)}")
    return units


def theta_inputs(
    theta: Any, *, scale: str = "log", units: Sequence[str] | None = None, name: str = "theta"
) -> ThetaInputs:
    """Check posterior site parameters and put them on the analysis scale.

    Parameters
    ----------
    theta : xarray.DataArray or array_like
        Draws with dims ``(sample, site, parameter)`` (a ``(chain, draw, site,
        parameter)`` array is stacked into ``sample``); a plain array is read as
        ``(sample, site, parameter)``. Units of each parameter from a
        ``parameter_units`` (or ``units``) coordinate, else ``units``.
    scale : {"log", "linear"}
        Analysis scale.
    units : sequence of str, optional
        Units per parameter (overrides the coordinate).
    name : str
        Argument name used in error messages.
    """
    if not isinstance(theta, xr.DataArray):
        arr = np.asarray(theta, dtype=np.float64)
        if arr.ndim != 3:
            raise ValueError(
                f"{name}: expected dims (sample, site, parameter), found shape {arr.shape}"
            )
        theta = xr.DataArray(arr, dims=("sample", "site", "parameter"))
    if {"chain", "draw"} <= set(theta.dims) and "sample" not in theta.dims:
        theta = theta.stack(sample=("chain", "draw")).reset_index("sample", drop=True)
    if set(theta.dims) != {"sample", "site", "parameter"}:
        raise ValueError(
            f"{name}: expected dims (sample, site, parameter), found {tuple(theta.dims)}"
        )
    theta = theta.transpose("sample", "site", "parameter")
    n_sample, n_site, n_par = theta.shape
    if n_sample < 2 or n_site < 3:
        raise ValueError(
            f"{name}: expected at least 2 samples and 3 sites, found {n_sample} and {n_site}"
        )
    pars = (
        tuple(str(p) for p in theta["parameter"].values)
        if "parameter" in theta.coords
        else tuple(f"p{i}" for i in range(n_par))
    )
    sites = theta["site"].values if "site" in theta.coords else np.arange(n_site)
    return ThetaInputs(
        values=transform(theta.values, scale, what=name),
        parameters=pars,
        units=_units_of(theta, "parameter", n_par, units),
        sites=np.asarray(sites),
        scale=scale,
    )


@dataclass(frozen=True)
class EnvInputs:
    """Checked environment: continuous predictors and vegetation classes."""

    values: np.ndarray  #: ``(site, feature)`` continuous predictors, in their units
    features: tuple[str, ...]  #: their names
    units: tuple[str, ...]  #: their units
    codes: np.ndarray  #: ``(site,)`` class index into ``classes``
    classes: tuple[str, ...]  #: vegetation classes present


def class_codes(labels: Any, n_sites: int) -> tuple[np.ndarray, tuple[str, ...]]:
    """Integer codes and sorted class names of per-site labels (``vegetation_class``)."""
    labels = np.asarray(labels.values if isinstance(labels, xr.DataArray) else labels)
    if labels.shape != (n_sites,):
        raise ValueError(
            f"vegetation_class: expected one label per site, shape ({n_sites},), found "
            f"{labels.shape}"
        )
    cat = pd.Categorical(labels.astype(str))
    return np.asarray(cat.codes, dtype=np.int64), tuple(str(c) for c in cat.categories)


def env_array(env: Any) -> xr.DataArray:
    """Return ``env`` as a ``(site, feature)`` DataArray (arrays get features ``x0, x1...``).

    Raises
    ------
    ValueError
        If ``env`` is not two-dimensional or its dims are not ``site`` and ``feature``.
    """
    if not isinstance(env, xr.DataArray):
        arr = np.asarray(env, dtype=np.float64)
        if arr.ndim != 2:
            raise ValueError(f"env: expected dims (site, feature), found shape {arr.shape}")
        env = xr.DataArray(
            arr,
            dims=("site", "feature"),
            coords={"feature": [f"x{i}" for i in range(arr.shape[1])]},
        )
    if set(env.dims) != {"site", "feature"}:
        raise ValueError(f"env: expected dims (site, feature), found {tuple(env.dims)}")
    env = env.transpose("site", "feature")
    return env


def env_inputs(
    env: Any,
    vegetation_class: Any = None,
    *,
    sites: np.ndarray | None = None,
    features: Sequence[str] | None = None,
) -> EnvInputs:
    """Check the environment and split it into continuous predictors and classes.

    Parameters
    ----------
    env : xarray.DataArray or array_like
        ``(site, feature)`` predictors (raw or standardised; results are reported in
        these units). One-hot columns named ``vegetation_class=<c>`` are not used as
        continuous predictors; they give the classes when ``vegetation_class`` is None.
    vegetation_class : array_like, optional
        ``(site,)`` class labels. Without them and without one-hot columns every site
        is in one class ``"all"``.
    sites : numpy.ndarray, optional
        Site labels of ``theta``; ``env``'s ``site`` coordinate must match them.
    features : sequence of str, optional
        Continuous predictors to use (default: every non-class column).
    """
    env = env_array(env)
    n = env.sizes["site"]
    if sites is not None:
        if n != len(sites):
            raise ValueError(f"env: expected {len(sites)} sites (as theta), found {n}")
        if "site" in env.coords and not np.array_equal(
            np.asarray(env["site"].values).astype(str), np.asarray(sites).astype(str)
        ):
            raise ValueError("env: expected the sites of theta in the same order, found others")
    names = (
        [str(f) for f in env["feature"].values]
        if "feature" in env.coords
        else [f"x{i}" for i in range(env.sizes["feature"])]
    )
    units = _units_of(env, "feature", len(names), None)
    onehot = [i for i, f in enumerate(names) if f.startswith(CLASS_PREFIX)]
    cont = [i for i in range(len(names)) if i not in onehot]
    if features is not None:
        unknown = [f for f in features if f not in names or names.index(f) in onehot]
        if unknown:
            raise ValueError(
                f"features: unknown continuous predictor(s) {unknown}; available "
                f"{[names[i] for i in cont]}"
            )
        cont = [names.index(f) for f in features]
    values = np.asarray(env.values, dtype=np.float64)
    if not np.all(np.isfinite(values[:, cont])):
        raise ValueError("env: expected finite predictors, found NaN or inf")
    if vegetation_class is not None:
        codes, classes = class_codes(vegetation_class, n)
    elif onehot:
        block = values[:, onehot]
        labels = np.array([names[onehot[j]][len(CLASS_PREFIX) :] for j in block.argmax(axis=1)])
        labels[block.max(axis=1) <= block.min(axis=1)] = "unknown"  # a row of equal entries
        codes, classes = class_codes(labels, n)
    else:
        codes, classes = np.zeros(n, dtype=np.int64), ("all",)
    return EnvInputs(
        values=values[:, cont],
        features=tuple(names[i] for i in cont),
        units=tuple(units[i] for i in cont),
        codes=codes,
        classes=classes,
    )


def draw_summary(draws: np.ndarray, prob: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and equal-tailed ``prob`` band over the leading (draw) axis, ignoring NaN."""
    check_prob(prob)
    draws = np.asarray(draws, dtype=np.float64)
    finite = np.isfinite(draws)
    count = finite.sum(axis=0)
    ok = count > 0
    mean = np.where(ok, np.where(finite, draws, 0.0).sum(axis=0) / np.maximum(count, 1), np.nan)
    q = [(1.0 - prob) / 2.0, (1.0 + prob) / 2.0]
    if finite.all():
        lo, hi = np.quantile(draws, q, axis=0)
    else:  # nanquantile is slow: only where needed; all-NaN slices filled (no warnings)
        lo, hi = np.nanquantile(np.where(ok, np.where(finite, draws, np.nan), 0.0), q, axis=0)
    return mean, np.where(ok, lo, np.nan), np.where(ok, hi, np.nan)


def summary_vars(
    name: str,
    draws: np.ndarray,
    dims: Sequence[str],
    *,
    prob: float,
    units: str,
    description: str,
    back: str | None = None,
) -> dict[str, xr.DataArray]:
    """``<name>_mean``, ``<name>_lower``, ``<name>_upper`` of per-draw values.

    Parameters
    ----------
    name : str
        Variable stem.
    draws : numpy.ndarray
        ``(draw, *dims)`` per-draw values.
    dims : sequence of str
        Dimension names after the draw axis.
    prob : float
        Probability mass of the band.
    units, description : str
        Attributes of the variables.
    back : str, optional
        An analysis scale: summarise on it and back-transform (the ``_mean`` of a log
        scale is then the exponential of the mean log, a geometric mean).
    """
    mean, lo, hi = draw_summary(draws, prob)
    if back is not None:
        mean, lo, hi = (back_transform(a, back) for a in (mean, lo, hi))
    pct = (100 * (1 - prob) / 2, 100 * (1 + prob) / 2)
    out = {}
    centre = "posterior mean" + (" of the log, back-transformed" if back == "log" else "")
    for suffix, arr, what in (
        ("mean", mean, centre),
        ("lower", lo, f"{pct[0]:g} % posterior quantile"),
        ("upper", hi, f"{pct[1]:g} % posterior quantile"),
    ):
        out[f"{name}_{suffix}"] = xr.DataArray(
            arr, dims=tuple(dims), attrs={"units": units, "description": f"{description}: {what}"}
        )
    return out
