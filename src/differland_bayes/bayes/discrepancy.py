"""Seasonal model discrepancy: a per-site, per-calendar-month correction of a stream.

A process model with the right parameters can still be wrong in a way no parameter
fixes: a flux whose seasonal course is too flat, too early or too late at a site, or
interannual anomalies that the model's forcing response exaggerates or misses. Following
Kennedy & O'Hagan (2001), the optional discrepancy term (``[likelihood] discrepancy``)
models the prediction of a listed stream ``k`` at site ``s`` and observation step ``t``
(calendar month ``m(t)``) as::

    mu_skt = fbar_skm + rho_k * (f_skt - fbar_skm) + delta_skm          m = m(t)
    fbar_skm = mean of f_sk over the steps of calendar month m          (the model's cycle)
    delta_skm = tau_k * eta_skm,    eta_skm ~ Normal(0, 1)               (non-centred)
    tau_k ~ HalfNormal(discrepancy_scale_for(k)),    rho_k ~ Uniform(0, 1)

With ``discrepancy_mean = "environment"`` the discrepancy has a prior mean that depends
on the site's standardised environment ``x_s`` (``F`` features)::

    delta_skm = mu_skm + tau_k * eta_skm
    mu_skm = sum_p B_pm * (c_kp0 + sum_f c_kpf * x_sf)      B: annual harmonic basis
    c_kp0 ~ Normal(0, s_k),   c_kpf ~ Normal(0, s_k / sqrt(F))     s_k = discrepancy_scale_for(k)

``B`` holds a constant and ``discrepancy_harmonics`` pairs of cosines and sines of the
calendar month (:func:`harmonic_basis`), with the months of southern-hemisphere sites
(latitude < 0) shifted by six, as in the IGBP-climatology baseline, so that a harmonic's
coefficient means the same season in both hemispheres. The coefficients ``c`` are global: they learn
the model's *systematic* seasonal error (e.g. a flux tower sink that a model in
near-steady state cannot make) as a function of the environment, which a new site then
inherits; ``tau`` is left with the part the environment does not explain.

* ``delta`` corrects the model's mean seasonal cycle at each site (12 values per site and
  stream), learned from the months the site was observed; a site the fit has not seen
  gets ``delta`` from its prior ``Normal(mu, tau_k)`` (``mu = 0`` without an environment
  mean: wider intervals, same mean).
* ``rho_k`` is how much of the model's own interannual anomaly (its departure from its
  mean seasonal cycle ``fbar``) carries into the prediction: 1 is the model as it is, 0
  its mean seasonal cycle alone. It is the regression coefficient of the observed
  anomalies on the modelled ones, learned with everything else.

``fbar`` is taken over every step of the series the model is run on (the observation
steps, whether observed or not), so the decomposition depends on the model alone, never
on which months were observed; predicting a different period changes ``fbar`` with it.

Sites of the program (``K`` = number of listed streams, order of the configuration):

=======================  ==========  ===============  ====================================
name                     kind        shape            meaning
=======================  ==========  ===============  ====================================
``discrepancy_sd``       sample      (K,)             ``tau_k`` (stream units)
``discrepancy_rho``      sample      (K,)             ``rho_k`` (1)
``discrepancy_coef``     sample      (K, P, F + 1)    ``c`` (stream units; environment
                                                      mean only, ``P = 1 + 2H``)
``discrepancy_eps``      sample      (B, K * 12)      ``eta`` (plates site, stream_month)
``discrepancy``          determ.     (B, K * 12)      ``delta`` (stream units)
=======================  ==========  ===============  ====================================

The pure function :func:`apply_discrepancy` holds the arithmetic; the functions that add
sample sites are called from :func:`~.model.hybrid_model`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd

from .config import LikelihoodConfig

__all__ = [
    "DISCREPANCY_GLOBALS",
    "DISCREPANCY_PLATE",
    "MONTHS",
    "DiscrepancyGlobals",
    "apply_discrepancy",
    "calendar_month",
    "coef_shape",
    "discrepancy_mean",
    "harmonic_basis",
    "harmonic_names",
    "month_means",
    "sample_discrepancy",
    "sample_discrepancy_globals",
    "southern_sites",
    "stream_months",
]

#: calendar months per year (the discrepancy's seasonal resolution)
MONTHS = 12
#: name of the plate over the flattened ``(stream, month)`` axis of ``discrepancy_eps``
DISCREPANCY_PLATE = "stream_month"
#: the global sample sites of the discrepancy
DISCREPANCY_GLOBALS: tuple[str, ...] = ("discrepancy_sd", "discrepancy_rho", "discrepancy_coef")


def calendar_month(times: Any) -> np.ndarray:
    """Calendar month of each time step, 0 (January) to 11 (December).

    Parameters
    ----------
    times : array_like of datetime64
        Start of each step (a month's first day for monthly steps).

    Returns
    -------
    numpy.ndarray
        ``int32`` month index per step.
    """
    return np.asarray(pd.DatetimeIndex(np.asarray(times)).month, dtype=np.int32) - 1


def stream_months(x: Any, n_streams: int) -> Any:
    """View the flattened, stream-major ``(..., K * 12)`` axis as ``(..., K, 12)``."""
    return x.reshape(x.shape[:-1] + (n_streams, MONTHS))


def month_means(
    values: jnp.ndarray, month: jnp.ndarray, mask: jnp.ndarray | None = None
) -> jnp.ndarray:
    """Each site's mean per calendar month (pure JAX).

    Parameters
    ----------
    values : jax.Array
        ``(site, time)`` values.
    month : jax.Array
        ``(time,)`` calendar month of each step, 0..11.
    mask : jax.Array, optional
        ``(site, time)`` bool, the entries that count (default: all).

    Returns
    -------
    jax.Array
        ``(site, 12)`` means (0 for a calendar month with no counted step).
    """
    onehot = (month[:, None] == jnp.arange(MONTHS)).astype(values.dtype)  # (T, 12)
    if mask is None:
        return (values @ onehot) / jnp.maximum(onehot.sum(axis=0), 1.0)
    w = mask.astype(values.dtype)
    return (jnp.where(mask, values, 0.0) @ onehot) / jnp.maximum(w @ onehot, 1.0)


def apply_discrepancy(
    pred: jnp.ndarray, delta: jnp.ndarray, rho: jnp.ndarray, month: jnp.ndarray
) -> jnp.ndarray:
    """Prediction of a stream with its seasonal discrepancy (pure JAX).

    Parameters
    ----------
    pred : jax.Array
        ``(site, time)`` process-model prediction ``f`` (stream units).
    delta : jax.Array
        ``(site, 12)`` discrepancy per calendar month (stream units).
    rho : jax.Array
        Scalar share of the model's anomaly from its mean seasonal cycle that is kept.
    month : jax.Array
        ``(time,)`` calendar month of each step, 0..11.

    Returns
    -------
    jax.Array
        ``(site, time)``: ``fbar[m] + rho * (f - fbar[m]) + delta[m]`` with ``fbar`` the
        mean of ``f`` over the steps of each calendar month (months absent from the series
        get no ``fbar``; no step uses them).
    """
    fbar_t = month_means(pred, month)[:, month]
    return fbar_t + rho * (pred - fbar_t) + delta[:, month]


def harmonic_basis(n_harmonics: int) -> np.ndarray:
    """Annual harmonic basis on the calendar months.

    Parameters
    ----------
    n_harmonics : int
        Number of harmonics ``H`` (0 gives the constant alone).

    Returns
    -------
    numpy.ndarray
        ``(1 + 2H, 12)``: a row of ones, then ``cos(2 pi h m / 12)`` and
        ``sin(2 pi h m / 12)`` for ``h = 1..H`` (``m`` = 0 for January).
    """
    m = np.arange(MONTHS)
    rows = [np.ones(MONTHS)]
    for h in range(1, n_harmonics + 1):
        rows += [np.cos(2 * np.pi * h * m / MONTHS), np.sin(2 * np.pi * h * m / MONTHS)]
    return np.stack(rows)


def harmonic_names(n_harmonics: int) -> list[str]:
    """Names of the rows of :func:`harmonic_basis`: ``mean, cos1, sin1, cos2, ...``."""
    return ["mean"] + [f"{f}{h}" for h in range(1, n_harmonics + 1) for f in ("cos", "sin")]


def coef_shape(config: LikelihoodConfig, n_env: int) -> tuple[int, int, int]:
    """Shape ``(K, 1 + 2H, F + 1)`` of ``discrepancy_coef`` for ``F = n_env`` features."""
    return (len(config.discrepancy), 1 + 2 * config.discrepancy_harmonics, n_env + 1)


def discrepancy_mean(
    coef: jnp.ndarray, env: jnp.ndarray, basis: Any, south: jnp.ndarray | None = None
) -> jnp.ndarray:
    """Environment-predicted mean of the discrepancy (pure JAX).

    Parameters
    ----------
    coef : jax.Array
        ``(..., K, P, F + 1)`` coefficients: intercept, then one per feature.
    env : jax.Array
        ``(site, F)`` standardised environment.
    basis : array_like
        ``(P, 12)`` harmonic basis (:func:`harmonic_basis`).
    south : jax.Array, optional
        ``(site,)`` bool: southern-hemisphere sites, whose basis is taken six months on
        (calendar month ``m`` uses the basis of month ``m + 6``). None: no site is.

    Returns
    -------
    jax.Array
        ``(..., site, K, 12)`` mean discrepancy per calendar month (stream units).
    """
    x = jnp.concatenate([jnp.ones(env.shape[:-1] + (1,), env.dtype), env], axis=-1)
    amp = jnp.einsum("...kpf,sf->...skp", coef, x)
    b = jnp.asarray(basis, amp.dtype)
    mu = amp @ b
    if south is None:
        return mu
    shifted = amp @ jnp.roll(b, -MONTHS // 2, axis=-1)  # column m holds month m + 6
    return jnp.where(jnp.asarray(south)[:, None, None], shifted, mu)


def southern_sites(forcing: Any) -> jnp.ndarray | None:
    """``(site,)`` bool: sites south of the equator (from ``forcing.lat``), or None."""
    lat = getattr(forcing, "lat", None)
    if lat is None:
        return None
    lat = jnp.asarray(lat)
    return (lat if lat.ndim == 1 else lat[:, 0]) < 0


class DiscrepancyGlobals(NamedTuple):
    """Global latents of the seasonal discrepancy (one entry per listed stream)."""

    #: ``(K,)`` sd of the site residual of the discrepancy (stream units)
    tau: jnp.ndarray
    #: ``(K,)`` share of the model's interannual anomaly kept
    rho: jnp.ndarray
    #: ``(K, P, F + 1)`` environment-mean coefficients, or None (zero mean)
    coef: jnp.ndarray | None
    #: ``(P, 12)`` harmonic basis of the mean, or None
    basis: np.ndarray | None


def sample_discrepancy_globals(config: LikelihoodConfig, n_env: int) -> DiscrepancyGlobals | None:
    """Sample the global discrepancy latents (None if the discrepancy is off).

    Parameters
    ----------
    config : LikelihoodConfig
        Observation model (``discrepancy`` streams, their prior scales and mean).
    n_env : int
        ``F``, the number of environment features.

    Returns
    -------
    DiscrepancyGlobals or None
        ``tau`` and ``rho`` (``discrepancy_sd``, ``discrepancy_rho``) and, with an
        environment mean, ``coef`` (``discrepancy_coef``) and its basis.
    """
    streams = config.discrepancy
    if not streams:
        return None
    scale = jnp.asarray(config.discrepancy_scales())
    tau = numpyro.sample("discrepancy_sd", dist.HalfNormal(scale).to_event(1))
    rho = numpyro.sample("discrepancy_rho", dist.Uniform(jnp.zeros(len(streams)), 1.0).to_event(1))
    if not config.discrepancy_has_mean:
        return DiscrepancyGlobals(tau, rho, None, None)
    basis = harmonic_basis(config.discrepancy_harmonics)
    shape = coef_shape(config, n_env)
    # intercept s_k; each feature s_k / sqrt(F), so that the F features together have
    # about the prior variance of the intercept (a standardised one-hot column of a rare
    # class takes values of 3-4, which a unit-scale prior would hardly restrain)
    per_column = jnp.concatenate([jnp.ones(1), jnp.full(n_env, 1.0 / np.sqrt(n_env))])
    coef_scale = jnp.broadcast_to(scale[:, None, None] * per_column, shape)
    coef = numpyro.sample("discrepancy_coef", dist.Normal(0.0, coef_scale).to_event(3))
    return DiscrepancyGlobals(tau, rho, coef, basis)


def sample_discrepancy(
    globals_: DiscrepancyGlobals, env: jnp.ndarray, south: jnp.ndarray | None = None
) -> jnp.ndarray:
    """Sample the local non-centred discrepancy of the sites of the batch.

    Call inside the model's ``site`` plate (``dim=-2``).

    Parameters
    ----------
    globals_ : DiscrepancyGlobals
        The global latents (:func:`sample_discrepancy_globals`).
    env : jax.Array
        ``(site, F)`` standardised environment of the batch's sites (used with an
        environment mean only).
    south : jax.Array, optional
        ``(site,)`` bool: the batch's southern-hemisphere sites (:func:`southern_sites`).

    Returns
    -------
    jax.Array
        ``(site, K, 12)`` discrepancy ``delta`` (stream units).
    """
    tau = globals_.tau
    n_streams = tau.shape[-1]
    with numpyro.plate(DISCREPANCY_PLATE, n_streams * MONTHS, dim=-1):
        eta = numpyro.sample("discrepancy_eps", dist.Normal(0.0, 1.0))
    delta = stream_months(eta, n_streams) * tau[:, None]
    if globals_.coef is not None:
        delta = delta + discrepancy_mean(globals_.coef, env, globals_.basis, south)
    numpyro.deterministic("discrepancy", delta.reshape(eta.shape))
    return delta
