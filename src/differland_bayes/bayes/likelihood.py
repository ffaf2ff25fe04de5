"""Observation likelihoods and the EDC potential of the hybrid model.

The functions that add NumPyro sites are meant to be called inside the model's
``site`` plate (``dim=-2``); they add their own ``time`` plate (``dim=-1``). Masked
entries (nothing observed, outside the split, spin-up) contribute exactly 0 to the log
density through :func:`numpyro.handlers.mask`; :func:`~differland_bayes.bayes.data.pack`
guarantees NaN-free values, so masked entries never poison gradients.

:func:`steady_state_edc` is pure JAX (spec §4.4); :func:`add_edc_potential` turns it
into a ``numpyro.factor``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from numpyro import handlers

from ..process.budget import BUDGET_EPS, CARBON_POOLS, budget_ratios, year_end_weights
from .config import LikelihoodConfig
from .data import StreamData
from .discrepancy import month_means

__all__ = [
    "EDC_EPS",
    "EDC_POOLS",
    "NOISE_PREFIX",
    "NOISE_SITE_PREFIXES",
    "RELATIVE_NOISE_PREFIX",
    "add_edc_potential",
    "add_stream_likelihood",
    "monthly_magnitude",
    "needs_learned_noise",
    "observation_distribution",
    "relative_noise_site",
    "sample_noise_scales",
    "sample_relative_noise",
    "steady_state_edc",
    "year_end_weights",
]

#: the epsilon of spec §4.4 (denominator guard and inside the log)
EDC_EPS = BUDGET_EPS

#: carbon pools of the EDC, in the order of the models' ``Pools``
EDC_POOLS: tuple[str, ...] = CARBON_POOLS

#: name prefix of a stream's learned noise sd, ``noise_<stream>``
NOISE_PREFIX = "noise_"
#: name prefix of its fraction of the flux's magnitude, ``relnoise_<stream>``
RELATIVE_NOISE_PREFIX = "relnoise_"
#: name prefixes of the noise sites
NOISE_SITE_PREFIXES: tuple[str, str] = (NOISE_PREFIX, RELATIVE_NOISE_PREFIX)


# -- noise ------------------------------------------------------------------------------
def needs_learned_noise(has_unc: bool, config: LikelihoodConfig) -> bool:
    """Whether a stream gets a learned noise sd ``noise_<stream>``.

    Parameters
    ----------
    has_unc : bool
        The stream came with its own uncertainty.
    config : LikelihoodConfig
        Observation model.
    """
    return not (config.use_data_uncertainty and has_unc) or config.add_learned_noise


def sample_noise_scales(
    has_unc: Mapping[str, bool], config: LikelihoodConfig
) -> dict[str, jnp.ndarray | None]:
    """Sample the learned per-stream noise sds (global sites ``noise_<stream>``).

    Each is ``HalfNormal(config.noise_scale_for(stream))`` in the stream's units.

    Parameters
    ----------
    has_unc : mapping of str to bool
        Streams and whether each came with its own uncertainty.
    config : LikelihoodConfig
        Observation model.

    Returns
    -------
    dict
        Stream -> sampled scalar sd, or None where the data's uncertainty is used alone.
    """
    out: dict[str, jnp.ndarray | None] = {}
    for name, unc in has_unc.items():
        if needs_learned_noise(bool(unc), config):
            out[name] = numpyro.sample(
                NOISE_PREFIX + name, dist.HalfNormal(config.noise_scale_for(name))
            )
        else:
            out[name] = None
    return out


def relative_noise_site(stream: str) -> str:
    """Name of the NumPyro site of a stream's relative noise, ``relnoise_<stream>``."""
    return RELATIVE_NOISE_PREFIX + stream


def sample_relative_noise(streams: Any, config: LikelihoodConfig) -> dict[str, jnp.ndarray | None]:
    """Sample the fractions of the noise sd that grow with the flux.

    Each stream of ``config.relative_noise`` gets a global site ``relnoise_<stream>`` ~
    ``HalfNormal(config.relative_noise_prior_scale)`` (dimensionless).

    Parameters
    ----------
    streams : iterable of str
        The streams of the data.
    config : LikelihoodConfig
        Observation model.

    Returns
    -------
    dict
        Stream -> sampled scalar fraction, or None for a stream with constant noise.
    """
    return {
        name: numpyro.sample(
            relative_noise_site(name), dist.HalfNormal(config.relative_noise_prior_scale)
        )
        if name in config.relative_noise
        else None
        for name in streams
    }


def monthly_magnitude(
    values: jnp.ndarray, mask: jnp.ndarray | None, month: jnp.ndarray | None
) -> jnp.ndarray:
    """Flux magnitude for the relative noise: each site's mean per calendar month.

    Pure JAX. A site's mean seasonal cycle stands for the flux's magnitude: unlike a
    single value it carries almost none of the noise it is to scale (a noisy reference
    would correlate with the residuals and bias the learned fraction low by about 10 %).

    Parameters
    ----------
    values : jax.Array
        ``(site, time)`` values (observations or predictions; stream units).
    mask : jax.Array or None
        ``(site, time)`` bool, the entries that count (None: all).
    month : jax.Array or None
        ``(time,)`` calendar month of each step, 0..11 (None: unknown; ``|values|`` is
        returned).

    Returns
    -------
    jax.Array
        ``(site, time)``: ``|mean of the site's counted values in the step's calendar
        month|`` (0 for a month with none counted).
    """
    if month is None:
        return jnp.abs(values) if mask is None else jnp.where(mask, jnp.abs(values), 0.0)
    return jnp.abs(month_means(values, month, mask)[:, month])


def observation_distribution(
    pred: jnp.ndarray,
    unc: jnp.ndarray,
    noise: jnp.ndarray | None,
    has_unc: bool,
    config: LikelihoodConfig,
    relative: jnp.ndarray | None = None,
    magnitude: jnp.ndarray | None = None,
) -> dist.Distribution:
    """Distribution of the observations of one stream around the prediction.

    Parameters
    ----------
    pred : jax.Array
        Model prediction ``(site, time)``.
    unc : jax.Array
        The data's 1-sd uncertainty ``(site, time)`` (0 where none).
    noise : jax.Array or None
        Learned noise sd of the stream (None: data uncertainty alone).
    has_unc : bool
        The stream came with its own uncertainty.
    config : LikelihoodConfig
        Observation model.
    relative : jax.Array or None
        Fraction of the flux magnitude added to the noise sd in quadrature (from
        :func:`sample_relative_noise`; None: constant noise).
    magnitude : jax.Array or None
        The flux whose magnitude the relative term scales with, ``(site, time)`` (see
        :func:`add_stream_likelihood`); default ``pred``.

    Returns
    -------
    numpyro.distributions.Distribution
        ``Normal`` or ``StudentT`` with scale ``unc``, ``noise`` or
        ``sqrt(unc**2 + noise**2)`` (see :class:`LikelihoodConfig`), with
        ``(relative * |magnitude|)**2`` added under the square root when ``relative`` is
        given.
    """
    use_unc = config.use_data_uncertainty and has_unc
    if use_unc and noise is not None:
        scale = jnp.sqrt(unc**2 + noise**2)
    elif use_unc:
        scale = unc
    else:
        if noise is None:
            raise ValueError("observation_distribution: a learned noise sd is needed here")
        scale = jnp.broadcast_to(noise, jnp.shape(pred))
    if relative is not None:
        ref = pred if magnitude is None else magnitude
        scale = jnp.sqrt(scale**2 + (relative * ref) ** 2)
    if config.family == "student_t":
        return dist.StudentT(config.df, pred, scale)
    return dist.Normal(pred, scale)


def add_stream_likelihood(
    name: str,
    pred: jnp.ndarray,
    stream: StreamData,
    *,
    noise: jnp.ndarray | None,
    has_unc: bool,
    config: LikelihoodConfig,
    predict: bool = False,
    relative: jnp.ndarray | None = None,
    month: jnp.ndarray | None = None,
) -> jnp.ndarray:
    """Add the observed site ``obs_<name>`` of one stream, masked where nothing was observed.

    Call inside the ``site`` plate (``dim=-2``); a ``time`` plate (``dim=-1``) is added.

    Parameters
    ----------
    name : str
        Stream name.
    pred : jax.Array
        Model prediction on the observation steps, ``(site_batch, time_obs)``
        (:func:`~.operators.predict_observed`).
    stream : StreamData
        Observations of the same sites, ``(site_batch, time)``.
    noise : jax.Array or None
        Learned noise sd (from :func:`sample_noise_scales`).
    has_unc : bool
        The stream came with its own uncertainty.
    config : LikelihoodConfig
        Observation model.
    predict : bool
        Draw new observations (prior / posterior predictive) instead of conditioning.
    relative : jax.Array or None
        Relative noise fraction (from :func:`sample_relative_noise`; None: constant
        noise). Conditioned on observations, the noise grows with the site's *observed*
        mean seasonal cycle (:func:`monthly_magnitude`), as flux-tower random-error
        models scale with the measured flux (Richardson et al. 2006); with ``predict``,
        with the prediction's. Scaling it with the prediction in the fit would reward
        predictions shrunk towards zero (through the log-sd term of the density): on
        CARDAMOM-FluxVal that biased the withheld months by -0.65 (GPP) and +0.67
        gC m-2 d-1 (NEE).
    month : jax.Array or None
        ``(time,)`` calendar month of each observation step (0..11; None: the
        magnitude is that of each value itself).

    Returns
    -------
    jax.Array
        The site's value (the observations, or the draws when ``predict``).
    """
    if pred.shape != stream.value.shape:
        raise ValueError(
            f"stream {name!r}: prediction of shape {pred.shape} does not match the "
            f"observations' {stream.value.shape}; expected the prediction on the observation "
            "steps (average model steps onto them with operators.predict_observed and "
            "FitData.aggregation, e.g. pack(..., observation_step='monthly'))"
        )
    # masked entries carry unc = 0 in packed data: give them a valid (unused) scale
    unc = jnp.where(stream.mask, stream.unc, 1.0)
    magnitude = None
    if relative is not None:
        magnitude = (
            monthly_magnitude(pred, None, month)
            if predict
            else monthly_magnitude(stream.value, stream.mask, month)
        )
    d = observation_distribution(pred, unc, noise, has_unc, config, relative, magnitude)
    with numpyro.plate("time", pred.shape[-1], dim=-1), handlers.mask(mask=stream.mask):
        return numpyro.sample(f"obs_{name}", d, obs=None if predict else stream.value)


# -- EDC --------------------------------------------------------------------------------
def steady_state_edc(
    outputs: Any, pools0: Any, forcing: Any, *, eps: float = EDC_EPS
) -> jnp.ndarray:
    """Steady-state ecological and dynamic constraint of spec §4.4, per site.

    For each carbon pool ``p`` (labile, foliar, root, wood, litter, SOM), with inflows
    and outflows summed over all steps (rates times the step length ``delta_t``;
    :func:`~differland_bayes.process.budget.carbon_pool_budgets`)::

        R_p  = sum(in_p) / max(sum(out_p), eps)
        S_p  = R_p * mean(pool_p at year ends) / pool_p(0)
        EDC  = sum_p log2(S_p + eps) ** 2

    Parameters
    ----------
    outputs : NamedTuple
        Model outputs, fields ``(..., time)`` (fire fluxes taken as 0 when the model has
        none, as DALEC990).
    pools0 : NamedTuple
        Initial pools, fields ``(...)``; the first six are the carbon pools.
    forcing : NamedTuple
        Forcing with ``doy`` and ``delta_t`` ``(..., time)``.
    eps : float
        The epsilon of the published code (1e-3).

    Returns
    -------
    jax.Array
        ``(...)`` EDC values (0 at an exact steady state; log2 units squared).

    Notes
    -----
    With a constant step length this equals the published value (the published code
    sums the rates without ``delta_t``; the ratio is the same).
    """
    ratios = budget_ratios(outputs, forcing, eps=eps)
    total = jnp.zeros(outputs.gpp.shape[:-1], outputs.gpp.dtype)
    for p, p0 in zip(EDC_POOLS, pools0, strict=False):
        ratio, mean_pool = ratios[p]
        total = total + jnp.log2(ratio * mean_pool / p0 + eps) ** 2
    return total


def add_edc_potential(edc: jnp.ndarray, scale: float) -> None:
    """Add ``-scale * edc`` per site as the factor ``edc`` (inside the ``site`` plate).

    Parameters
    ----------
    edc : jax.Array
        ``(site_batch,)`` values from :func:`steady_state_edc`.
    scale : float
        Weight of the potential (``ModelConfig.edc_scale``).
    """
    numpyro.factor("edc", -scale * edc[:, None])
