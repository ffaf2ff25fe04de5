"""Predictions of the hybrid model: at the fitted sites, and at sites no fit has seen.

:func:`posterior_predictive` draws, at the sites of a fit, the parameters (``z``,
``theta``), new observations of every stream **with** observation noise
(``obs_<stream>``, drawn everywhere, also where nothing was observed) and noise-free
process outputs, from the posterior of an SVI fit (guide draws), a NUTS fit (its
draws) or a mapping of draws.

:func:`predict_new_sites` predicts sites from their environment alone, which is how the
model generalises in space: the parameters are ``z = f_phi(x_new) + sigma * eps`` with
fresh ``eps ~ N(0, 1)`` for every draw, ``x_new`` encoded with the *training*
standardisation and vegetation classes (:attr:`~.data.FitMeta`), the network weights
and ``sigma`` (and learned noise scales) from the posterior.

Both run the NumPyro program :func:`~.model.hybrid_model` itself under
:class:`numpyro.infer.Predictive` (``predict=True``), then re-simulate the drawn
``theta`` for the requested outputs. Results are plain dicts of NumPy arrays, the draw
axis first (``P`` = free parameters in :attr:`~.model.ParameterLayout.free_names`
order, ``P_all`` = the process model's whole table in ``process.table.names`` order):

===========================  =========================  ==================================
key                          shape                      meaning
===========================  =========================  ==================================
``sigma``                    (sample, P)                residual sd of ``z``
``noise_<stream>``           (sample,)                  learned noise sd (if in the model)
``eps``                      (sample, site, P)          standard-normal residual
``z_loc``                    (sample, site, P)          network location of ``z``
``z``                        (sample, site, P)          unconstrained free parameters
``theta``                    (sample, site, P_all)      physical parameters and pools
``parameters``               (sample, site, P)          physical free parameters
``obs_<stream>``             (sample, site, time)       observations, with noise
``<output>``                 (sample, site, time)       noise-free output / stream value
===========================  =========================  ==================================

``<output>`` is a stream name with an observation operator (``gpp``, ``nee``, ``reco``,
``et``, ``lai``, ``biomass``, ...; :data:`~.operators.OPERATORS`) or a field of the
process model's ``Outputs`` (e.g. ``respiration_auto``, ``next_wood_pool``).
:func:`credible_interval` and :func:`interval_coverage` summarise draws.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from numpyro import handlers
from numpyro.infer import Predictive

from ..dataset import env_matrix
from .config import ModelConfig
from .data import FitData, FitMeta, StreamData
from .discrepancy import DISCREPANCY_GLOBALS, calendar_month
from .hybrid_process import process_from_params
from .likelihood import needs_learned_noise, relative_noise_site
from .mcmc import NUTSFit, condition_on_network, network_from_params
from .model import (
    DETERMINISTIC_SITES,
    LOCAL_SITES,
    NET_NAME,
    ParameterLayout,
    hybrid_model,
    simulate_sites,
)
from .operators import OPERATORS, predict_stream
from .prior_net import EnvPriorNet
from .records import build_site_forcing
from .svi import SVIFit

__all__ = [
    "DEFAULT_OUTPUTS",
    "DEFAULT_SVI_SAMPLES",
    "EQUILIBRIUM_ITERATIONS",
    "NEW_SITE_POOLS",
    "credible_interval",
    "encode_sites",
    "interval_coverage",
    "posterior_draws",
    "posterior_predictive",
    "predict_new_sites",
    "simulate_draws",
]

log = logging.getLogger(__name__)

#: outputs simulated by default (the streams most fits observe)
DEFAULT_OUTPUTS: tuple[str, ...] = ("gpp", "nee", "et", "lai")
#: guide draws taken from an SVI fit when ``num_samples`` is not given
DEFAULT_SVI_SAMPLES = 500
#: initial carbon pools of new sites (:func:`predict_new_sites`), the default first
NEW_SITE_POOLS: tuple[str, ...] = ("network", "equilibrium")
#: fixed-point iterations of the equilibrium pools of new sites
EQUILIBRIUM_ITERATIONS = 3

#: the site plate of the model (local latents; possibly subsampled in an SVI fit)
_SITE_PLATE = "site"

Posterior = SVIFit | NUTSFit | Mapping[str, Any]


# --------------------------------------------------------------------------- summaries


def credible_interval(
    draws: Any, prob: float = 0.9, *, axis: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed credible interval of draws.

    Parameters
    ----------
    draws : array_like
        Draws, the draw axis at ``axis`` (e.g. ``(sample, site, time)``).
    prob : float
        Probability mass inside the interval, in ``(0, 1)``.
    axis : int
        The draw axis.

    Returns
    -------
    tuple of numpy.ndarray
        ``(lower, upper)``: the ``(1 - prob) / 2`` and ``(1 + prob) / 2`` quantiles,
        shaped like ``draws`` without ``axis``.

    Raises
    ------
    ValueError
        If ``prob`` is not in ``(0, 1)``.
    """
    if not 0.0 < prob < 1.0:
        raise ValueError(f"prob: expected a number in (0, 1), found {prob!r}")
    a = np.asarray(draws)
    lower, upper = np.quantile(a, [(1.0 - prob) / 2.0, (1.0 + prob) / 2.0], axis=axis)
    return lower, upper


def interval_coverage(
    draws: Any, values: Any, mask: Any = None, *, prob: float = 0.9, axis: int = 0
) -> float:
    """Fraction of values inside the draws' equal-tailed credible interval.

    Parameters
    ----------
    draws : array_like
        Predictive draws, the draw axis at ``axis`` (e.g. ``obs_gpp``).
    values : array_like
        Observed values, shaped like ``draws`` without ``axis``.
    mask : array_like of bool, optional
        Entries to count (e.g. ``data.streams["gpp"].mask``); default all.
    prob : float
        Probability mass of the interval.
    axis : int
        The draw axis.

    Returns
    -------
    float
        The covered fraction of the counted entries (NaN if none is counted).
    """
    lower, upper = credible_interval(draws, prob, axis=axis)
    values = np.asarray(values)
    inside = (values >= lower) & (values <= upper)
    mask = np.ones(values.shape, bool) if mask is None else np.asarray(mask, bool)
    n = int(mask.sum())
    return float(inside[mask].sum() / n) if n else float("nan")


# --------------------------------------------------------------------------- simulation


def _check_outputs(process: Any, names: Sequence[str]) -> tuple[str, ...]:
    fields = set(process.Outputs._fields)
    bad = [n for n in names if n not in fields and n not in OPERATORS]
    if bad:
        raise ValueError(
            f"return_outputs: unknown output(s) {bad}; expected stream names "
            f"{sorted(OPERATORS)} or fields of {process.name}'s Outputs "
            f"{list(process.Outputs._fields)}"
        )
    return tuple(names)


def _output(name: str, outputs: Any) -> jnp.ndarray:
    if name in outputs._fields:
        return getattr(outputs, name)
    return predict_stream(name, outputs)


@eqx.filter_jit
def _simulate_draws(
    process: Any, theta: jnp.ndarray, forcing: Any, names: tuple[str, ...]
) -> dict[str, jnp.ndarray]:
    def one(th: jnp.ndarray) -> dict[str, jnp.ndarray]:
        params, pools0 = process.split(th)
        out = simulate_sites(process, params, pools0, forcing)
        return {n: _output(n, out) for n in names}

    return jax.lax.map(one, theta)


def simulate_draws(
    process: Any, theta: Any, forcing: Any, names: Sequence[str] = DEFAULT_OUTPUTS
) -> dict[str, np.ndarray]:
    """Simulate every draw of ``theta`` and return the named outputs.

    Parameters
    ----------
    process : AbstractDalec
        The process model.
    theta : array_like
        ``(sample, site, P_all)`` physical parameters and initial pools.
    forcing : NamedTuple
        ``model.Forcing`` with fields ``(site, time)`` (e.g. ``data.forcing``).
    names : sequence of str
        Stream names (observation operators) or fields of ``process.Outputs``.

    Returns
    -------
    dict
        Name -> ``(sample, site, time)`` noise-free values (draws one after another,
        each a ``vmap`` over sites).

    Raises
    ------
    ValueError
        For an unknown output name.
    """
    names = _check_outputs(process, names)
    if not names:
        return {}
    out = _simulate_draws(process, jnp.asarray(theta), forcing, names)
    return {k: np.asarray(v) for k, v in out.items()}


# --------------------------------------------------------------------------- posterior


def _select(draws: Mapping[str, Any], num_samples: int | None) -> dict[str, jnp.ndarray]:
    """Evenly thin the draws to ``num_samples`` (cycling through them if more)."""
    arrays = {k: jnp.asarray(v) for k, v in draws.items()}
    if not arrays:
        raise ValueError("posterior: expected at least one draw, found an empty mapping")
    sizes = {int(jnp.shape(v)[0]) if jnp.ndim(v) else -1 for v in arrays.values()}
    if len(sizes) != 1 or -1 in sizes:
        raise ValueError(
            "posterior: expected draws with a common leading sample axis, found shapes "
            f"{ {k: tuple(jnp.shape(v)) for k, v in arrays.items()} }"
        )
    n = sizes.pop()
    if num_samples is None or num_samples == n:
        return arrays
    if num_samples < 1:
        raise ValueError(f"num_samples: expected an integer >= 1, found {num_samples}")
    if num_samples <= n:
        idx = np.round(np.linspace(0, n - 1, num_samples)).astype(int)
    else:
        idx = np.arange(num_samples) % n
    return {k: v[idx] for k, v in arrays.items()}


def _is_latent(name: str) -> bool:
    return not name.startswith("_") and name not in DETERMINISTIC_SITES


def posterior_draws(
    posterior: Posterior,
    *,
    data: FitData | None,
    process: Any,
    net: EnvPriorNet,
    config: ModelConfig,
    key: jax.Array,
    num_samples: int | None = None,
) -> tuple[dict[str, jnp.ndarray], EnvPriorNet]:
    """Latent draws of a posterior and the network they go with.

    Parameters
    ----------
    posterior : SVIFit, NUTSFit or mapping
        An SVI fit (draws of its guide at ``best_params``, for every site of ``data``
        also when the fit used minibatches), a NUTS fit (its draws), or
        a mapping of draws ``name -> (sample, ...)`` of latent sites (``sigma``,
        ``eps``, ``noise_<stream>``, ``prior_net/<path>``; deterministic sites are
        dropped).
    data : FitData or None
        The data the fit was run on (needed to run an SVI guide).
    process : AbstractDalec
        The process model.
    net : EnvPriorNet
        The network passed to the fit. Point mode: an SVI fit's weights
        (``prior_net$params`` in its params, if it optimised them) and a NUTS fit's
        network (:attr:`NUTSFit.net`) replace it; a mapping's draws go with ``net`` as
        given (see :func:`~.mcmc.network_from_params`).
    config : ModelConfig
        The model's configuration.
    key : jax.Array
        PRNG key of the guide draws.
    num_samples : int, optional
        Number of draws: an SVI guide's (default :data:`DEFAULT_SVI_SAMPLES`); NUTS
        and mapping draws are thinned evenly (or cycled through, if more are asked
        for than there are).

    Returns
    -------
    tuple
        ``(draws, net)``: latent draws with a leading sample axis, and the network.
    """
    if isinstance(posterior, SVIFit):
        if data is None:
            raise ValueError(
                "an SVI guide draws at the fit's sites: pass the FitData it was fitted on "
                "(data= for posterior_draws / posterior_predictive, train_data= for "
                "predict_new_sites)"
            )
        params = posterior.best_params
        if not config.network.bayesian_weights and f"{NET_NAME}$params" in params:
            net = network_from_params(net, params)
        n = DEFAULT_SVI_SAMPLES if num_samples is None else num_samples
        n_sites = data.env.shape[0]
        if n < 1:
            raise ValueError(f"num_samples: expected an integer >= 1, found {n}")
        # every fitted site, also from a guide fitted on minibatches (its plate would
        # otherwise draw a minibatch of the prototype's size); NumPyro warns about the
        # size differing from the guide's subsample size, which is intended here
        guide = handlers.substitute(posterior.guide, data={_SITE_PLATE: jnp.arange(n_sites)})
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="subsample_size does not match")
            raw = Predictive(guide, params=params, num_samples=n)(
                key, data, process=process, net=net, config=config
            )
        return {k: v for k, v in raw.items() if _is_latent(k)}, net
    if isinstance(posterior, NUTSFit):
        draws = {k: v for k, v in posterior.samples.items() if _is_latent(k)}
        return _select(draws, num_samples), posterior.net
    if isinstance(posterior, Mapping):
        draws = {k: v for k, v in posterior.items() if _is_latent(k)}
        return _select(draws, num_samples), net
    raise TypeError(
        "posterior: expected an SVIFit, a NUTSFit or a mapping of draws, found "
        f"{type(posterior).__name__}"
    )


def _fitted_process(posterior: Posterior, process: Any, config: ModelConfig) -> Any:
    """Return the process model with an SVI fit's point-estimated hybrid weights, if any."""
    if isinstance(posterior, SVIFit) and not config.network.bayesian_weights:
        return process_from_params(process, posterior.best_params)
    return process


def _model_for(net: EnvPriorNet, config: ModelConfig) -> Any:
    return hybrid_model if config.network.bayesian_weights else condition_on_network(net)


def _run_predictive(
    data: FitData,
    draws: Mapping[str, jnp.ndarray],
    *,
    process: Any,
    net: EnvPriorNet,
    config: ModelConfig,
    key: jax.Array,
    return_outputs: Sequence[str],
    equilibrium_iterations: int = 0,
) -> dict[str, np.ndarray]:
    names = _check_outputs(process, return_outputs)
    sites = ["sigma", *LOCAL_SITES, *DETERMINISTIC_SITES, *DISCREPANCY_GLOBALS]
    sites += [f"obs_{s}" for s in data.streams]
    sites += [f"noise_{s}" for s in data.streams]
    sites += [relative_noise_site(s) for s in config.likelihood.relative_noise]
    pred = Predictive(_model_for(net, config), posterior_samples=dict(draws), return_sites=sites)(
        key,
        data,
        process=process,
        net=net,
        config=config,
        predict=True,
        equilibrium_iterations=equilibrium_iterations,
    )
    out = {k: np.asarray(v) for k, v in pred.items()}
    layout = ParameterLayout.for_config(process.table, config)
    free = [process.table.names.index(n) for n in layout.free_names]
    out["parameters"] = out["theta"][..., free]
    out.update(simulate_draws(process, out["theta"], data.forcing, names))
    return out


def posterior_predictive(
    data: FitData,
    *,
    process: Any,
    net: EnvPriorNet,
    config: ModelConfig,
    posterior: Posterior,
    key: jax.Array,
    num_samples: int | None = None,
    return_outputs: Sequence[str] = DEFAULT_OUTPUTS,
) -> dict[str, np.ndarray]:
    """Posterior predictive draws at the fitted sites.

    Parameters
    ----------
    data : FitData
        The data of the fit (its sites; the values of ``obs_<stream>`` are drawn, not
        read, and masks do not matter: draws exist at every site and time step).
    process : AbstractDalec
        The process model.
    net : EnvPriorNet
        The network passed to the fit (see :func:`posterior_draws` for which weights
        are used).
    config : ModelConfig
        The model's configuration.
    posterior : SVIFit, NUTSFit or mapping
        The posterior (see :func:`posterior_draws`); a mapping must contain ``eps``
        for the fitted sites.
    key : jax.Array
        PRNG key; the only randomness.
    num_samples : int, optional
        Number of draws (see :func:`posterior_draws`).
    return_outputs : sequence of str
        Noise-free outputs to simulate (stream names or ``Outputs`` fields).

    Returns
    -------
    dict
        NumPy arrays with the draw axis first; see the module docstring.

    Raises
    ------
    ValueError
        If the draws lack ``eps`` or do not match the data's sites, or for an unknown
        output name.
    """
    _check_outputs(process, return_outputs)
    k_draw, k_pred = jax.random.split(key)
    draws, net = posterior_draws(
        posterior,
        data=data,
        process=process,
        net=net,
        config=config,
        key=k_draw,
        num_samples=num_samples,
    )
    process = _fitted_process(posterior, process, config)
    n_sites = data.env.shape[0]
    if "eps" not in draws or jnp.shape(draws["eps"])[1:2] != (n_sites,):
        found = tuple(jnp.shape(draws["eps"])) if "eps" in draws else None
        raise ValueError(
            f"posterior: expected draws of eps of shape (sample, {n_sites}, P) for the "
            f"fitted sites, found {found}; for sites the fit has not seen use "
            "predict_new_sites"
        )
    return _run_predictive(
        data,
        draws,
        process=process,
        net=net,
        config=config,
        key=k_pred,
        return_outputs=return_outputs,
    )


# --------------------------------------------------------------------------- new sites


def encode_sites(ds: xr.Dataset, process: Any, meta: FitMeta) -> tuple[Any, jnp.ndarray]:
    """Encode sites like the training sites: forcing and standardised environment.

    The same encoding as :func:`~.data.pack` with ``env_spec=meta``: the training
    vegetation classes (one-hot columns; a class the fit has not seen is all zeros) and
    the training predictor means and sds, so that a site gets the same network input
    whether or not it was among the training sites. Needs no observations.

    Parameters
    ----------
    ds : xarray.Dataset
        Canonical dataset of the sites (forcing and ``env``).
    process : AbstractDalec
        The process model.
    meta : FitMeta
        Metadata of the training :func:`~.data.pack`.

    Returns
    -------
    tuple
        ``(forcing, env)``: ``model.Forcing`` with fields ``(site, time)`` and the
        standardised environment ``(site, n_env)``.

    Raises
    ------
    ValueError
        If the predictors differ from the training ones or are not finite.
    """
    x, names = env_matrix(ds, classes=list(meta.classes), predictors=meta.predictors)
    if names != list(meta.features):
        raise ValueError(f"env: expected the predictors of the fit {meta.features}, found {names}")
    sd = np.where(np.asarray(meta.env_sd) > 0, meta.env_sd, 1.0)
    env = (x - np.asarray(meta.env_mean)) / sd
    if not np.all(np.isfinite(env)):
        raise ValueError("env: expected finite predictors at every new site, found NaN or inf")
    # filled outside each site's record where the sites' records differ (union axis)
    return build_site_forcing(ds, process), jnp.asarray(env)


def _new_site_uncertainty(
    ds: xr.Dataset, stream: str, shape: tuple[int, int], obs_unc: Mapping[str, Any] | None
) -> np.ndarray | None:
    """1-sd observation uncertainty of a stream at every new (site, time), or None."""
    if obs_unc is not None and stream in obs_unc:
        unc = np.broadcast_to(np.asarray(obs_unc[stream], float), shape).copy()
        if not np.all(np.isfinite(unc) & (unc > 0)):
            raise ValueError(f"obs_unc[{stream!r}]: expected positive finite values")
        return unc
    name = f"{stream}_unc"
    if name not in ds:
        return None
    unc = np.asarray(ds[name].transpose("site", "time").values, float)
    good = np.isfinite(unc) & (unc > 0)
    if not good.any():
        return None
    overall = float(np.median(unc[good]))
    out = unc.copy()
    for i in range(shape[0]):
        fill = float(np.median(unc[i, good[i]])) if good[i].any() else overall
        out[i] = np.where(good[i], unc[i], fill)
    return out


def predict_new_sites(
    ds_new: xr.Dataset,
    meta: FitMeta,
    *,
    process: Any,
    net: EnvPriorNet,
    config: ModelConfig,
    posterior: Posterior,
    key: jax.Array,
    num_samples: int | None = None,
    train_data: FitData | None = None,
    streams: Sequence[str] | None = None,
    obs_unc: Mapping[str, Any] | None = None,
    return_outputs: Sequence[str] = DEFAULT_OUTPUTS,
    initial_pools: str = NEW_SITE_POOLS[0],
) -> dict[str, np.ndarray]:
    """Predict sites no fit has seen from their environment alone.

    For every posterior draw of the global quantities (network weights, ``sigma``,
    learned noise scales) the parameters of each new site are
    ``z = f_phi(x_new) + sigma * eps`` with a fresh ``eps ~ N(0, 1)`` (times the
    scale head's multiplier, plus ``sigma_floor``, as in the model), mapped to their
    bounds; the sites are simulated and observations drawn with observation noise.

    Parameters
    ----------
    ds_new : xarray.Dataset
        Canonical dataset of the new sites: forcing and ``env`` (observations are not
        needed; their ``<stream>_unc`` give the observation noise).
    meta : FitMeta
        Metadata of the *training* :func:`~.data.pack`: its predictor standardisation
        and vegetation classes encode the new sites (:func:`encode_sites`).
    process : AbstractDalec
        The process model.
    net : EnvPriorNet
        The network passed to the fit (see :func:`posterior_draws` for which weights
        are used; for a mapping of draws in point mode, the trained network, e.g.
        ``network_from_params(net, svi_fit.params)``).
    config : ModelConfig
        The model's configuration.
    posterior : SVIFit, NUTSFit or mapping
        The posterior (see :func:`posterior_draws`): a mapping needs ``sigma``
        ``(sample, P)`` and, as the model has them, ``noise_<stream>`` ``(sample,)`` and
        ``prior_net/<path>`` weight draws. Site-level draws (``eps`` of the fitted
        sites) are ignored.
    key : jax.Array
        PRNG key; the only randomness.
    num_samples : int, optional
        Number of draws (see :func:`posterior_draws`; cycling through the global draws
        when more are asked for, each with its own ``eps``).
    train_data : FitData, optional
        The training data; needed for an SVI fit (to run its guide).
    streams : sequence of str, optional
        Streams whose observations are drawn (``obs_<stream>``); default the fit's
        (``meta.streams``).
    obs_unc : mapping of str to array_like, optional
        1-sd observation uncertainty per stream (scalar or ``(site, time)``), over
        ``ds_new``'s ``<stream>_unc``. Missing entries of ``<stream>_unc`` are filled
        with the site's median (or, for a site without any, the overall median).
    return_outputs : sequence of str
        Noise-free outputs to simulate (stream names or ``Outputs`` fields).
    initial_pools : {"network", "equilibrium"}
        Initial carbon pools of the new sites: ``"network"`` (default) draws them like
        the other parameters (network location plus ``sigma`` times a fresh residual);
        ``"equilibrium"`` puts the root, wood, litter and SOM pools in dynamic
        equilibrium with each draw's parameters and the site's forcing
        (:func:`~differland_bayes.process.budget.equilibrium_pools`,
        :data:`EQUILIBRIUM_ITERATIONS` iterations), ignoring disturbance history. Drawn
        pools are the default, as they assume nothing about a site's state; equilibrium
        pools suit sites near steady state predicted from a fit whose pools the
        steady-state EDC held near equilibrium too: on CARDAMOM-FluxVal left-out sites
        (``fluxval.toml``, EDC at 100) they gave NEE R² 0.368 against 0.351 with drawn
        pools, beating the IGBP climatology (0.358).

    Returns
    -------
    dict
        NumPy arrays with the draw axis first, sites in ``ds_new``'s order; see the
        module docstring (``eps`` are the fresh residuals, ``parameters`` the physical
        free parameters; ``theta`` holds the pools actually simulated).

    Raises
    ------
    ValueError
        If the new sites' predictors differ from the training ones, or a stream's
        observation noise is unknown: neither an uncertainty (``<stream>_unc`` or
        ``obs_unc``) nor a learned ``noise_<stream>`` in the posterior.
    """
    _check_outputs(process, return_outputs)
    if initial_pools not in NEW_SITE_POOLS:
        raise ValueError(
            f"initial_pools: expected one of {list(NEW_SITE_POOLS)}, found {initial_pools!r}"
        )
    forcing, env = encode_sites(ds_new, process, meta)
    n_sites = env.shape[0]
    n_time = int(ds_new.sizes["time"])
    k_draw, k_pred = jax.random.split(key)
    draws, net = posterior_draws(
        posterior,
        data=train_data,
        process=process,
        net=net,
        config=config,
        key=k_draw,
        num_samples=num_samples,
    )
    # fresh local residuals (eps, discrepancy_eps) for the new sites
    draws = {k: v for k, v in draws.items() if k not in LOCAL_SITES}
    process = _fitted_process(posterior, process, config)
    if "sigma" not in draws:
        raise ValueError(f"posterior: expected draws of sigma, found {sorted(draws)}")

    packed: dict[str, StreamData] = {}
    has_unc: dict[str, bool] = {}
    for s in meta.streams if streams is None else streams:
        unc = _new_site_uncertainty(ds_new, s, (n_sites, n_time), obs_unc)
        has_unc[s] = unc is not None
        if needs_learned_noise(has_unc[s], config.likelihood) and f"noise_{s}" not in draws:
            raise ValueError(
                f"stream {s!r}: no observation noise for the new sites: the dataset has no "
                f"{s}_unc and the posterior no learned noise_{s}; pass obs_unc={{{s!r}: sd}}"
            )
        packed[s] = StreamData(
            value=jnp.zeros((n_sites, n_time)),
            mask=jnp.ones((n_sites, n_time), bool),
            unc=jnp.asarray(np.zeros((n_sites, n_time)) if unc is None else unc),
        )
    data = FitData(
        forcing=forcing,
        env=env,
        streams=packed,
        has_unc=has_unc,
        month=jnp.asarray(calendar_month(ds_new["time"].values)),
    )
    log.info(
        "predicting %d new site(s) x %d step(s) from %d draw(s)",
        n_sites,
        n_time,
        int(jnp.shape(draws["sigma"])[0]),
    )
    return _run_predictive(
        data,
        draws,
        process=process,
        net=net,
        config=config,
        key=k_pred,
        return_outputs=return_outputs,
        equilibrium_iterations=EQUILIBRIUM_ITERATIONS if initial_pools == "equilibrium" else 0,
    )
