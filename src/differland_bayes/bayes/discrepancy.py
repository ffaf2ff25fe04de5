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

* ``delta`` corrects the model's mean seasonal cycle at each site (12 values per site and
  stream), learned from the months the site was observed; a site the fit has not seen
  gets ``delta`` from its prior ``Normal(0, tau_k)``, i.e. wider intervals, same mean.
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
``discrepancy_eps``      sample      (B, K * 12)      ``eta`` (plates site, stream_month)
``discrepancy``          determ.     (B, K * 12)      ``delta`` (stream units)
=======================  ==========  ===============  ====================================

The pure function :func:`apply_discrepancy` holds the arithmetic; the functions that add
sample sites are called from :func:`~.model.hybrid_model`.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd

from .config import LikelihoodConfig

__all__ = [
    "DISCREPANCY_PLATE",
    "MONTHS",
    "apply_discrepancy",
    "calendar_month",
    "sample_discrepancy",
    "sample_discrepancy_scales",
]

#: calendar months per year (the discrepancy's seasonal resolution)
MONTHS = 12
#: name of the plate over the flattened ``(stream, month)`` axis of ``discrepancy_eps``
DISCREPANCY_PLATE = "stream_month"


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
    onehot = (month[:, None] == jnp.arange(MONTHS)).astype(pred.dtype)  # (T, 12)
    count = jnp.maximum(onehot.sum(axis=0), 1.0)
    fbar = (pred @ onehot) / count  # (site, 12)
    fbar_t = fbar[:, month]
    return fbar_t + rho * (pred - fbar_t) + delta[:, month]


def sample_discrepancy_scales(
    config: LikelihoodConfig,
) -> tuple[jnp.ndarray, jnp.ndarray] | None:
    """Sample the global ``discrepancy_sd`` and ``discrepancy_rho`` (None if off).

    Parameters
    ----------
    config : LikelihoodConfig
        Observation model (``discrepancy`` streams and their prior scales).

    Returns
    -------
    tuple of jax.Array or None
        ``(tau, rho)``, each ``(K,)``.
    """
    streams = config.discrepancy
    if not streams:
        return None
    scale = jnp.asarray(config.discrepancy_scales())
    tau = numpyro.sample("discrepancy_sd", dist.HalfNormal(scale).to_event(1))
    rho = numpyro.sample("discrepancy_rho", dist.Uniform(jnp.zeros(len(streams)), 1.0).to_event(1))
    return tau, rho


def sample_discrepancy(tau: jnp.ndarray, n_streams: int) -> jnp.ndarray:
    """Sample the local non-centred discrepancy of the sites of the batch.

    Call inside the model's ``site`` plate (``dim=-2``).

    Parameters
    ----------
    tau : jax.Array
        ``(K,)`` discrepancy sds.
    n_streams : int
        ``K``.

    Returns
    -------
    jax.Array
        ``(site, K, 12)`` discrepancy ``delta`` (stream units).
    """
    with numpyro.plate(DISCREPANCY_PLATE, n_streams * MONTHS, dim=-1):
        eta = numpyro.sample("discrepancy_eps", dist.Normal(0.0, 1.0))
    delta = eta.reshape(eta.shape[:-1] + (n_streams, MONTHS)) * tau[:, None]
    numpyro.deterministic("discrepancy", delta.reshape(eta.shape))
    return delta
