"""Draws of a fitted run at the sites of a dataset: the numbers behind the DataTree.

:func:`run_draws` reads a run (or takes a :class:`~differland_bayes.bayes.fit_restore.
RestoredFit`), draws its posterior once and runs the NumPyro program
:func:`~differland_bayes.bayes.model.hybrid_model` itself for every draw, conditioned on
the dataset's observations, recording from the same trace

* the deterministic sites ``z``, ``z_loc`` and ``theta`` (site parameters),
* a posterior predictive draw of every stream **with** observation noise, drawn from
  the observation distribution of the program (so Normal / Student-t, data uncertainty
  and learned noise are exactly the fit's), at every site and observation step,
* the pointwise log likelihood of every observation under the same distribution.

For an SVI run with a proper (non-``delta``) guide it also records, per draw, the
model's joint log density ``log p`` of the fit (every latent sample site and every
observation in the fit's likelihood, all fitted sites, full batch) and the guide's log
density ``log q`` of the same draw, which PSIS-LOO needs to correct for the variational
approximation (:func:`~.loo.loo`).

Sites of the dataset that the run was fitted on (matched by id) use their fitted
residuals ``eps`` (guide draws); other sites get fresh ``eps ~ N(0, 1)``, i.e. they are
predicted from their environment alone, as ``differland predict`` does.

The *prior* draws are ``z = f_phi(x) + (sigma + sigma_floor) * m(x) * eps`` with fresh
``eps ~ N(0, 1)``, the network ``f_phi`` (and scale head ``m``) and ``sigma`` taken from
the **posterior** draws: the learned population distribution of a site's parameters
before its own observations are seen (the distribution a new site is predicted from).
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from numpyro import handlers
from numpyro.infer.util import log_density

from ..bayes.data import FitData, StreamData, pack
from ..bayes.discrepancy import DISCREPANCY_GLOBALS
from ..bayes.fit_data import derive_configured
from ..bayes.fit_restore import RestoredFit
from ..bayes.likelihood import NOISE_SITE_PREFIXES
from ..bayes.mcmc import condition_on_network
from ..bayes.model import LOCAL_SITES, NET_NAME, ParameterLayout, hybrid_model
from ..bayes.predict import _is_latent, posterior_draws
from ..bayes.predict_dataset import _guide_data, _guide_posterior, check_compatible
from ..bayes.run import env_spec

__all__ = ["DRAW_CHUNK", "RunDraws", "run_draws"]

log = logging.getLogger(__name__)

#: deterministic sites recorded from the program's trace
_TRACED_SITES: tuple[str, ...] = ("z", "z_loc", "theta", "discrepancy")
#: draws evaluated per compiled call (progress is reported per chunk)
DRAW_CHUNK = 50


@dataclass(frozen=True, eq=False)
class RunDraws:
    """Draws of a run at the sites of a dataset (host NumPy arrays, draw axis first).

    Attributes
    ----------
    fit : RestoredFit
        The run.
    ds : xarray.Dataset
        The dataset the draws are for (its sites, in its order).
    streams : list of str
        The run's streams.
    obs_time : numpy.ndarray
        Start of each observation step (the dataset's time unless observations are
        aggregated to months).
    free_names : tuple of str
        The estimated parameters (order of the ``parameter`` axis).
    fitted, heldout : numpy.ndarray
        Per site: the run was fitted on the site; the site was held out for early
        stopping (its observations were not in the likelihood).
    observed, in_fit : dict of str to numpy.ndarray
        Per stream ``(site, time)`` bool: an observation exists; it was in the fit's
        likelihood (training site, the run's ``split``, after spin-up).
    obs : dict of str to numpy.ndarray
        Per stream ``(site, time)`` observed values, NaN where not observed.
    unc : dict of str to numpy.ndarray
        Per stream ``(site, time)`` 1-sd observation uncertainty of the data (NaN where
        none; without ``<stream>_unc`` all NaN).
    split_time : numpy.ndarray or None
        ``(site, time)`` ``split_time`` of the observation steps, if the data have it.
    posterior : dict of str to numpy.ndarray
        ``sigma`` (S, P), ``noise_<stream>`` (S,), ``z``, ``z_loc``, ``parameters``
        (S, site, P) and, with Bayesian weights, ``prior_net/<path>`` weight draws.
    prior : dict of str to numpy.ndarray
        ``z`` and ``parameters`` (S, site, P) (see the module docstring).
    predictive, log_lik : dict of str to numpy.ndarray
        Per stream ``(S, site, time)``: predictive draws with noise; pointwise log
        likelihood (NaN where not observed).
    net : EnvPriorNet
        The fitted network (point mode) or the initial one (Bayesian weights).
    env_inputs : numpy.ndarray
        ``(site, n_inputs)`` standardised network inputs.
    num_samples, seed : int
        Draws and PRNG seed.
    log_p, log_q : numpy.ndarray or None
        ``(S,)`` model joint log density of the fit and guide log density at each
        posterior draw (nat, constrained parameterisation); None for a ``delta`` (MAP)
        guide or when the dataset lacks some of the run's sites.
    """

    fit: RestoredFit
    ds: xr.Dataset
    streams: list[str]
    obs_time: np.ndarray
    free_names: tuple[str, ...]
    fitted: np.ndarray
    heldout: np.ndarray
    observed: dict[str, np.ndarray]
    in_fit: dict[str, np.ndarray]
    obs: dict[str, np.ndarray]
    unc: dict[str, np.ndarray]
    split_time: np.ndarray | None
    posterior: dict[str, np.ndarray]
    prior: dict[str, np.ndarray]
    predictive: dict[str, np.ndarray]
    log_lik: dict[str, np.ndarray]
    net: Any
    env_inputs: np.ndarray
    num_samples: int
    seed: int
    log_p: np.ndarray | None = None
    log_q: np.ndarray | None = None


def _observation_step(fit: RestoredFit) -> str:
    return str(getattr(fit.config.data, "observation_step", "model"))


def _pack(ds: xr.Dataset, fit: RestoredFit, **kwargs: Any) -> tuple[FitData, Any]:
    """:func:`pack` with the run's encoding; ``observation_step`` only where supported."""
    step = _observation_step(fit)
    extra = {} if step == "model" else {"observation_step": step}
    return pack(
        ds, fit.process, streams=list(fit.meta["streams"]), env_spec=env_spec(fit.meta),
        **extra, **kwargs,
    )  # fmt: skip


def _fill_unc(unc: np.ndarray) -> np.ndarray:
    """Fill non-positive uncertainties with the site's (or overall) median of the rest."""
    good = np.isfinite(unc) & (unc > 0)
    if not good.any():
        return unc
    overall = float(np.median(unc[good]))
    out = unc.copy()
    for i in range(unc.shape[0]):
        fill = float(np.median(unc[i, good[i]])) if good[i].any() else overall
        out[i] = np.where(good[i], unc[i], fill)
    return out


def _split_on_steps(ds: xr.Dataset, obs_time: np.ndarray) -> np.ndarray | None:
    """``split_time`` on the observation steps (the largest value within each step)."""
    if "split_time" not in ds:
        return None
    split = np.asarray(ds["split_time"].transpose("site", "time").values)
    model_time = np.asarray(ds["time"].values)
    if len(model_time) == len(obs_time) and np.all(model_time == obs_time):
        return split.astype(np.int8)
    idx = np.searchsorted(np.asarray(obs_time), model_time, side="right") - 1
    out = np.zeros((split.shape[0], len(obs_time)), dtype=np.int8)
    for m in range(len(obs_time)):
        cols = idx == m
        if cols.any():
            out[:, m] = split[:, cols].max(axis=1)
    return out


def _chunked_map(
    fn: Any, inputs: Mapping[str, jnp.ndarray], *, chunk: int = DRAW_CHUNK
) -> np.ndarray:
    """Map ``fn`` (one input row -> scalar) over the leading axis, ``chunk`` rows a call."""
    out = _chunked_map_tree(lambda row: {"value": fn(row)}, inputs, chunk=chunk)
    return np.asarray(out["value"], float)


def _guide_log_q(
    fit: RestoredFit,
    guide_data: FitData,
    net: Any,
    key: jax.Array,
    draws: Mapping[str, jnp.ndarray],
) -> tuple[np.ndarray, dict[str, jnp.ndarray]]:
    """Guide log density of the draws of :func:`posterior_draws` (replayed with its keys).

    The guide is run again with the keys ``Predictive`` gave each draw, and ``log q`` is
    summed over every sample site of its trace (auxiliary ``_auto_latent`` and the
    Jacobian terms of ``AutoContinuous`` guides included), which is the density of the
    constrained draw. Returns ``(log_q, draws)``: the replayed latent draws, which equal
    ``draws`` (if they do not, they replace them and that is logged).
    """
    n = int(jnp.shape(next(iter(draws.values())))[0])
    n_fit = int(guide_data.env.shape[0])
    guide = handlers.substitute(_guide_posterior(fit).guide, data={"site": jnp.arange(n_fit)})
    params = fit.params
    kwargs = {"process": fit.process, "net": net, "config": fit.model_config}
    keys = jax.random.split(key, n) if n > 1 else jnp.reshape(key, (1,))
    names = sorted(draws)

    def one(row: dict[str, jnp.ndarray]) -> dict[str, jnp.ndarray]:
        seeded = handlers.seed(guide, rng_seed=jax.random.wrap_key_data(row["key"]))
        lq, tr = log_density(seeded, (guide_data,), kwargs, params)
        return {"log_q": lq, **{k: tr[k]["value"] for k in names}}

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="subsample_size does not match")
        out = _chunked_map_tree(one, {"key": jax.random.key_data(keys)})
    replayed = {k: jnp.asarray(out[k]) for k in names}
    same = all(
        np.allclose(np.asarray(replayed[k]), np.asarray(draws[k]), rtol=1e-5, atol=1e-6)
        for k in names
    )
    if not same:
        log.info("guide draws replayed with different values; using the replayed draws")
    return np.asarray(out["log_q"], float), (dict(draws) if same else replayed)


def _chunked_map_tree(
    fn: Any, inputs: Mapping[str, jnp.ndarray], *, chunk: int = DRAW_CHUNK
) -> dict[str, np.ndarray]:
    """:func:`_chunked_map` for functions returning a dict of arrays."""
    n = int(jnp.shape(next(iter(inputs.values())))[0])
    run_chunk = jax.jit(lambda d: jax.lax.map(fn, d))
    chunk = max(1, min(chunk, n))
    parts: list[dict[str, np.ndarray]] = []
    for start in range(0, n, chunk):
        idx = np.arange(start, start + chunk) % n
        res = run_chunk({k: jnp.asarray(v)[idx] for k, v in inputs.items()})
        parts.append({k: np.asarray(v)[: min(chunk, n - start)] for k, v in res.items()})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _model_log_p(
    fit: RestoredFit, ds: xr.Dataset, model: Any, net: Any, draws: Mapping[str, jnp.ndarray]
) -> np.ndarray:
    """Joint log density of the fit (all its sites, its likelihood's observations) per draw.

    ``draws`` are the guide's latent draws over the run's sites (``eps`` in the order of
    ``fit.meta["sites"]``); the observations are packed as the fit packed them (split,
    spin-up), early-stopping sites' observations masked out; no minibatching.
    """
    meta = fit.meta
    ids = [str(s) for s in np.asarray(ds["site"].values).astype(str)]
    where = {s: i for i, s in enumerate(ids)}
    order = [where[str(s)] for s in meta["sites"]]
    sub = ds.isel(site=order)
    data, _ = _pack(sub, fit, split=meta.get("split"), spinup_steps=meta.get("spinup_steps", 0))
    held = set(map(str, meta.get("heldout_sites", [])))
    train = jnp.asarray([str(s) not in held for s in meta["sites"]])[:, None]
    streams = {k: sd._replace(mask=jnp.asarray(sd.mask) & train) for k, sd in data.streams.items()}
    data = data._replace(streams=streams)
    kwargs = {"process": fit.process, "net": net, "config": fit.model_config}
    seeded = handlers.seed(model, rng_seed=0)  # nothing is drawn: every latent is given

    def one(draw: dict[str, jnp.ndarray]) -> jnp.ndarray:
        return log_density(seeded, (data,), kwargs, draw)[0]

    return _chunked_map(one, draws)


def _trace_draws(
    model: Any,
    data: FitData,
    draws: Mapping[str, jnp.ndarray],
    key: jax.Array,
    *,
    fit: RestoredFit,
    net: Any,
    streams: list[str],
    chunk: int = DRAW_CHUNK,
    progress_bar: bool | None = None,
) -> dict[str, np.ndarray]:
    """Run the program once per draw; record sites, predictive draws and log likelihoods.

    Draws are evaluated ``chunk`` at a time by one compiled ``lax.map`` (the last chunk
    padded), with a progress bar over the chunks.
    """
    from tqdm.auto import tqdm

    n = int(jnp.shape(next(iter(draws.values())))[0])
    kwargs = {"process": fit.process, "net": net, "config": fit.model_config}

    def one(args: tuple[dict[str, jnp.ndarray], jax.Array]) -> dict[str, jnp.ndarray]:
        draw, k = args
        k_model, k_obs = jax.random.split(k)
        seeded = handlers.seed(handlers.substitute(model, data=draw), rng_seed=k_model)
        tr = handlers.trace(seeded).get_trace(data, **kwargs)
        out = {name: tr[name]["value"] for name in _TRACED_SITES if name in tr}
        for s, ks in zip(streams, jax.random.split(k_obs, len(streams)), strict=True):
            site = tr[f"obs_{s}"]
            out[f"log_lik/{s}"] = site["fn"].log_prob(site["value"])
            out[f"predictive/{s}"] = site["fn"].sample(ks)
        return out

    run_chunk = jax.jit(lambda d, k: jax.lax.map(one, (d, k)))
    chunk = max(1, min(chunk, n))
    keys = jax.random.split(key, n)
    parts: list[dict[str, np.ndarray]] = []
    starts = range(0, n, chunk)
    disable = None if progress_bar is None else not progress_bar
    for start in tqdm(starts, desc="draws", unit="chunk", disable=disable):
        idx = np.arange(start, start + chunk) % n  # the last chunk wraps around (padding)
        res = run_chunk({k: v[idx] for k, v in draws.items()}, keys[idx])
        parts.append({k: np.asarray(v)[: min(chunk, n - start)] for k, v in res.items()})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _scale_multiplier(
    net: Any, draws: Mapping[str, jnp.ndarray], env: jnp.ndarray, bayesian: bool
) -> np.ndarray | None:
    """Return the scale head's multiplier ``m(x)`` ``(S or 1, site, P)`` (None: no head)."""
    if getattr(net, "scale_head", None) is None:
        return None
    if not bayesian:
        return np.asarray(jax.vmap(net)(env).scale)[None]
    params, static = eqx.partition(net, eqx.is_inexact_array)
    leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
    names = [f"{NET_NAME}/{jax.tree_util.keystr(p)[1:]}" for p, _ in leaves]
    stacked = [jnp.asarray(draws[n]) if n in draws else jnp.asarray(v)[None] for n, (_, v) in
               zip(names, leaves, strict=True)]  # fmt: skip

    def one(ws: list[jnp.ndarray]) -> jnp.ndarray:
        model = eqx.combine(jax.tree_util.tree_unflatten(treedef, ws), static)
        return jax.vmap(model)(env).scale

    return np.asarray(jax.lax.map(one, stacked))


def _sites(ds: xr.Dataset, fit: RestoredFit) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ids = np.asarray(ds["site"].values).astype(str)
    run_sites = [str(s) for s in fit.meta["sites"]]
    held = set(map(str, fit.meta.get("heldout_sites", [])))
    fitted = np.array([s in run_sites for s in ids], dtype=bool)
    heldout = np.array([s in held for s in ids], dtype=bool)
    return ids, fitted, heldout


def _in_fit(
    ds: xr.Dataset,
    fit: RestoredFit,
    shape_of: dict[str, tuple[int, int]],
    obs_time: np.ndarray,
) -> dict:
    """Per stream: observations that entered the fit's likelihood (``pack`` as the fit).

    Held-out sites, and with ``data.holdout = 'months'`` each site's steps from
    ``heldout_from`` on, are not in the fit.
    """
    ids, fitted, heldout = _sites(ds, fit)
    train = np.broadcast_to((fitted & ~heldout)[:, None], (len(ids), len(obs_time))).copy()
    start = np.asarray(obs_time)
    dated = np.issubdtype(start.dtype, np.datetime64)
    heldout_from = fit.meta.get("heldout_from", {})
    for i, site in enumerate(ids):
        since = heldout_from.get(site)
        if since is not None:
            bound = np.datetime64(since).astype(start.dtype) if dated else float(since)
            train[i] &= start < bound
    meta = fit.meta
    try:
        spinup = meta.get("spinup_steps", 0)
        packed, _ = _pack(ds, fit, split=meta.get("split"), spinup_steps=spinup)
    except ValueError:  # nothing left: no observation of the data was fitted
        return {s: np.zeros(shape, bool) for s, shape in shape_of.items()}
    return {s: np.asarray(packed.streams[s].mask) & train for s in shape_of}


def run_draws(
    fit: RestoredFit,
    ds: xr.Dataset,
    *,
    num_samples: int = 200,
    seed: int = 0,
    progress_bar: bool | None = None,
) -> RunDraws:
    """Draw the posterior of a run and evaluate it at the sites of a dataset.

    Parameters
    ----------
    fit : RestoredFit
        The run (:func:`~differland_bayes.bayes.fit_restore.restore_fit`).
    ds : xarray.Dataset
        Canonical dataset with the run's streams and predictors (e.g. the training data,
        ``load_dataset(fit.config, fit.process)[0]``); sites not in the run are
        predicted from their environment alone.
    num_samples : int
        Posterior draws (>= 1).
    seed : int
        PRNG seed; the only randomness.
    progress_bar : bool or None
        Progress bar over chunks of draws (None: only on a terminal).

    Returns
    -------
    RunDraws
        The draws (see :class:`RunDraws`).

    Raises
    ------
    ValueError
        If ``num_samples < 1`` or the data do not match the run (streams, predictors,
        observation noise).
    """
    if num_samples < 1:
        raise ValueError(f"num_samples: expected an integer >= 1, found {num_samples}")
    t0 = time.perf_counter()
    ds = derive_configured(ds, fit.config)  # predictors the run derives from the forcing
    check_compatible(ds, fit.meta)
    meta, cfg = fit.meta, fit.model_config
    streams = list(meta["streams"])
    bayesian = bool(cfg.network.bayesian_weights)
    ids, fitted, heldout = _sites(ds, fit)
    layout = ParameterLayout.for_config(fit.process.table, cfg)
    n_sites = len(ids)
    k_draw, k_eps, k_trace, k_prior = jax.random.split(jax.random.key(seed), 4)

    guide_data = _guide_data(ds, fit)
    draws, net = posterior_draws(
        _guide_posterior(fit), data=guide_data, process=fit.process, net=fit.net,
        config=cfg, key=k_draw, num_samples=num_samples,
    )  # fmt: skip
    model = hybrid_model if bayesian else condition_on_network(net)
    log_p = log_q = None
    if str(fit.config.svi.guide) == "delta":
        log.info("delta (MAP) guide: no log p / log q for the VI-corrected PSIS-LOO")
    elif not set(map(str, meta["sites"])) <= set(ids):
        log.info("the dataset lacks some of the run's sites: no VI-corrected PSIS-LOO")
    else:
        latent = {k: jnp.asarray(v) for k, v in draws.items() if _is_latent(k)}
        log_q, latent = _guide_log_q(fit, guide_data, net, k_draw, latent)
        draws = {**draws, **latent}
        log_p = _model_log_p(fit, ds, model, net, latent)
        log.info(
            "log p - log q at the draws: mean %.1f nat, sd %.1f nat",
            float(np.mean(log_p - log_q)), float(np.std(log_p - log_q)),
        )  # fmt: skip
    local: dict[str, np.ndarray] = {}
    index = {str(s): i for i, s in enumerate(meta["sites"])}
    rows = np.array([index[s] for s in ids[fitted]], dtype=int)
    for j, name in enumerate(n for n in LOCAL_SITES if n in draws):
        # fitted sites: their posterior residuals; new sites: fresh N(0, 1) ones
        width = int(np.shape(draws[name])[-1])
        fresh = jax.random.normal(jax.random.fold_in(k_eps, j), (num_samples, n_sites, width))
        local[name] = np.array(fresh)
        if fitted.any():
            local[name][:, fitted] = np.asarray(draws[name])[:, rows]
    eps = local["eps"]
    draws = {k: jnp.asarray(v) for k, v in {**draws, **local}.items()}

    full, fmeta = _pack(ds, fit, split=None, spinup_steps=0)
    agg_time = getattr(fmeta, "obs_time", None)  # monthly observations of a daily model
    obs_time = np.asarray(fmeta.time if agg_time is None else agg_time)
    observed, obs, unc, packed = {}, {}, {}, {}
    has_unc = {s: bool(meta["has_uncertainty"][s]) for s in streams}
    for s in streams:
        sd = full.streams[s]
        observed[s] = np.asarray(sd.mask, bool)
        obs[s] = np.where(observed[s], np.asarray(sd.value, float), np.nan)
        raw_unc = np.asarray(sd.unc, float)
        unc[s] = np.where(raw_unc > 0, raw_unc, np.nan)
        if has_unc[s] and not (raw_unc > 0).any():
            raise ValueError(
                f"stream {s!r}: the run takes its observation noise from the data's "
                f"uncertainty, but the data have no positive {s}_unc"
            )
        filled = _fill_unc(raw_unc) if has_unc[s] else np.ones_like(raw_unc)
        packed[s] = StreamData(
            value=sd.value, mask=jnp.ones(sd.mask.shape, bool), unc=jnp.asarray(filled)
        )
    data = full._replace(streams=packed, has_unc=has_unc)
    log.info(
        "evaluating %d draw(s) at %d site(s) (%d fitted, %d new) x %d step(s)",
        num_samples, n_sites, int(fitted.sum()), int((~fitted).sum()), len(obs_time),
    )  # fmt: skip
    traced = _trace_draws(
        model, data, draws, k_trace, fit=fit, net=net, streams=streams, progress_bar=progress_bar
    )

    free_idx = [fit.process.table.names.index(n) for n in layout.free_names]
    sigma = np.asarray(draws["sigma"])
    posterior: dict[str, np.ndarray] = {
        "sigma": sigma,
        "z": traced["z"],
        "z_loc": traced["z_loc"],
        "parameters": traced["theta"][..., free_idx],
    }
    for k, v in draws.items():
        if k.startswith((*NOISE_SITE_PREFIXES, f"{NET_NAME}/")) or k in DISCREPANCY_GLOBALS:
            posterior[k] = np.asarray(v)
    if "discrepancy" in traced:
        posterior["discrepancy"] = traced["discrepancy"]

    m = _scale_multiplier(net, draws, data.env, bayesian)
    sd = (sigma + cfg.sigma_floor)[:, None, :] * (1.0 if m is None else m)
    eps_prior = np.asarray(jax.random.normal(k_prior, eps.shape))
    z_prior = traced["z_loc"] + sd * eps_prior
    prior = {"z": z_prior, "parameters": np.asarray(layout.free_table.to_physical(z_prior))}

    log_lik = {s: np.where(observed[s], traced[f"log_lik/{s}"], np.nan) for s in streams}
    predictive = {s: traced[f"predictive/{s}"] for s in streams}
    in_fit = _in_fit(ds, fit, {s: observed[s].shape for s in streams}, obs_time)
    log.info("draws evaluated in %.1f s", time.perf_counter() - t0)
    return RunDraws(
        fit=fit, ds=ds, streams=streams, obs_time=obs_time, free_names=layout.free_names,
        fitted=fitted, heldout=heldout, observed=observed,
        in_fit={s: in_fit[s] & observed[s] for s in streams}, obs=obs, unc=unc,
        split_time=_split_on_steps(ds, obs_time), posterior=posterior, prior=prior,
        predictive=predictive, log_lik=log_lik, net=net, env_inputs=np.asarray(data.env),
        num_samples=int(num_samples), seed=int(seed), log_p=log_p, log_q=log_q,
    )  # fmt: skip
