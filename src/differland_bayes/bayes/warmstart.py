"""MAP warm start: fit a point estimate first, then start the variational guide there.

SVI from the network's random initialisation under-fits real data: the learned noise
scales absorb the misfit early and the site residuals hardly move. A maximum a
posteriori fit (an :class:`~numpyro.infer.autoguide.AutoDelta` guide on the same model,
the same minibatches and the same priors) first finds a good point; the variational
guide then starts there: its network weights are the MAP weights, its global latents
(``sigma``, noise scales, Bayesian weights) start at their MAP values and every site's
residual ``eps`` at its MAP value, with the guide's ``init_scale`` around them.

``[svi] map_steps`` (0: off) and ``map_lr`` configure it; a resumed run skips it (its
checkpoint already holds the guide).

**Empirical-Bayes sigma** (``[svi] map_sigma_rounds`` > 0). A MAP point of the
non-centred hierarchy ``z = f(x) + sigma * eps`` is degenerate in ``sigma``: for fixed
``z`` the prior term ``-eps**2 / 2 = -(z - f)**2 / (2 sigma**2)`` only grows with
``sigma``, so the MAP ``sigma`` inflates until its own prior stops it, the residuals
``eps`` shrink, and the network is hardly pulled towards the sites' values. With
rounds, the first half of the MAP steps runs as above; then, per round, ``sigma`` is
set to the spread of the sites' MAP residuals (``sd_new = sd * rms(eps)`` per
parameter, at least ``min(sigma, sigma_prior_scale)`` so that parameters no data
inform keep a prior-sized spread), ``eps`` is rescaled so that every ``z`` is
unchanged, and the MAP fit continues for its share of the second half with ``sigma``
held there (an EM-like empirical-Bayes step); a last rescaling follows the last
round. The guide then starts at a ``sigma`` consistent with the sites' spread.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from numpyro import handlers

from .discrepancy import stream_months
from .fit_problem import FitProblem, _init_strategy, problem_guide
from .fitconfig import FitConfig
from .guides import make_guide
from .hybrid_process import process_from_params
from .mcmc import network_from_params
from .model import LOCAL_SITES, hybrid_model, initial_values
from .optim import make_optimizer
from .svi import fit_svi

__all__ = ["WarmStart", "empirical_bayes_sigma", "map_warm_start"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, eq=False)
class WarmStart:
    """The outcome of :func:`map_warm_start`.

    Attributes
    ----------
    problem : FitProblem
        The problem with the MAP network in ``model_kwargs`` and a guide started at the
        MAP point.
    init_params : dict
        Initial values of the guide's per-site location params (``<site>_auto_loc``), for
        ``fit_svi(init_params=...)``.
    losses : numpy.ndarray
        The MAP loss trace (negative log joint density, minibatch estimate).
    """

    problem: FitProblem
    init_params: dict[str, Any]
    losses: np.ndarray


def _local_loc_params(guide: Any, point: Mapping[str, Any]) -> dict[str, Any]:
    """Return the location params of the guide's local (per-site) part, set to the MAP values.

    The local sites are subsampled, so ``init_to_value`` cannot set them (NumPyro draws
    the prototype on one batch); instead the full-size location params of the
    ``AutoNormal`` or :class:`~.guides.AutoSiteMVN` that holds them (``<site>_auto_loc``)
    are given directly.
    """
    from numpyro.infer.autoguide import AutoGuideList, AutoNormal

    from .guides import AutoSiteMVN

    parts = guide._guides if isinstance(guide, AutoGuideList) else [guide]
    out: dict[str, Any] = {}
    for part in parts:
        if isinstance(part, AutoNormal | AutoSiteMVN):
            for name in LOCAL_SITES:
                if name in point:
                    out[f"{name}_{part.prefix}_loc"] = jnp.asarray(point[name])
    return out


def empirical_bayes_sigma(
    sigma: Any, eps: Any, *, sigma_floor: float, lower: Any
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Set ``sigma`` to the spread of the site residuals, keeping every ``z`` unchanged.

    Parameters
    ----------
    sigma : array_like
        ``(P,)`` current residual scales (unconstrained ``z`` units).
    eps : array_like
        ``(site, P)`` current standardised residuals.
    sigma_floor : float
        The model's constant added to ``sigma`` (``ModelConfig.sigma_floor``).
    lower : array_like
        ``(P,)`` or scalar lower bound of the new ``sigma`` (> 0).

    Returns
    -------
    tuple of jax.Array
        ``(sigma_new, eps_new)`` with ``(sigma_new + floor) * eps_new ==
        (sigma + floor) * eps`` and ``sigma_new = max((sigma + floor) * rms(eps) - floor,
        lower)``, the root mean square over sites.
    """
    sigma = jnp.asarray(sigma)
    eps = jnp.asarray(eps)
    sd = sigma + sigma_floor
    rms = jnp.sqrt(jnp.mean(eps**2, axis=0))
    new = jnp.maximum(sd * rms - sigma_floor, jnp.asarray(lower))
    return new, eps * sd / (new + sigma_floor)


#: (scale, standardised local residual) pairs that the empirical-Bayes rounds rescale
_EB_SCALES: dict[str, str] = {"sigma": "eps", "discrepancy_sd": "discrepancy_eps"}


def _empirical_bayes_point(point: Mapping[str, Any], mcfg: Any, lower: Any) -> dict[str, Any]:
    """Apply :func:`empirical_bayes_sigma` to ``sigma`` and, if present, the discrepancy.

    The discrepancy sd of each stream is set to the spread of its ``delta`` over sites
    and months, less its environment mean where it has one (``tau * eta = delta - mu``;
    no floor; at least 5 % of its prior scale).
    """
    out = dict(point)
    out["sigma"], out["eps"] = empirical_bayes_sigma(
        point["sigma"], point["eps"], sigma_floor=mcfg.sigma_floor, lower=lower
    )
    if "discrepancy_sd" in point:
        tau = jnp.asarray(point["discrepancy_sd"])
        eta = jnp.asarray(point["discrepancy_eps"])
        k = tau.shape[0]
        per_stream = jnp.moveaxis(stream_months(eta, k), 1, -1).reshape(-1, k)
        floor = 0.05 * jnp.asarray(mcfg.likelihood.discrepancy_scales())
        new_tau, new_eta = empirical_bayes_sigma(tau, per_stream, sigma_floor=0.0, lower=floor)
        new_eta = jnp.moveaxis(new_eta.reshape(eta.shape[0], -1, k), -1, 1)
        out["discrepancy_sd"], out["discrepancy_eps"] = new_tau, new_eta.reshape(eta.shape)
    return out


def _map_fit(problem: FitProblem, model: Any, values: Mapping[str, Any], *, key: jax.Array,
             steps: int, cfg: FitConfig, init_params: dict[str, Any] | None,
             progress_bar: bool) -> Any:  # fmt: skip
    s = cfg.svi
    delta = make_guide(model, "delta", init_loc_fn=_init_strategy(dict(values)))
    return fit_svi(
        model,
        delta,
        key=key,
        num_steps=steps,
        optimizer=make_optimizer(
            s.map_lr, clip_norm=s.clip_norm or None, schedule="cosine", total_steps=steps
        ),
        model_args=(problem.data,),
        model_kwargs=problem.model_kwargs,
        progress_bar=progress_bar,
        init_params=init_params,
    )


def map_warm_start(
    cfg: FitConfig, problem: FitProblem, *, key: jax.Array, progress_bar: bool = True
) -> WarmStart:
    """Fit the MAP point of ``problem`` and return the problem started there.

    Parameters
    ----------
    cfg : FitConfig
        The configuration: ``svi.map_steps`` (> 0), ``svi.map_lr``, ``svi.clip_norm``,
        ``svi.guide`` (the guide that is rebuilt at the MAP point).
    problem : FitProblem
        The problem from :func:`~.fit_problem.build_problem`.
    key : jax.Array
        PRNG key of the MAP fit (minibatch selection).
    progress_bar : bool
        Show a progress bar.

    Returns
    -------
    WarmStart
        The problem with the MAP network and guide, and the guide's initial local params.

    Raises
    ------
    ValueError
        If ``svi.map_steps`` is not positive.
    """
    s = cfg.svi
    if s.map_steps <= 0:
        raise ValueError(f"svi.map_steps: expected a positive number of steps, found {s.map_steps}")
    values = initial_values(problem.net, problem.model_config, problem.process)
    rounds = s.map_sigma_rounds
    first = s.map_steps - (s.map_steps // 2 if rounds else 0)
    log.info("MAP warm start: %d steps (lr %g)", s.map_steps, s.map_lr)
    keys = jax.random.split(key, rounds + 1)
    map_fit = _map_fit(problem, hybrid_model, values, key=keys[0], steps=first, cfg=cfg,
                       init_params=None, progress_bar=progress_bar)  # fmt: skip
    losses = [np.asarray(map_fit.losses)]
    point = dict(map_fit.guide.median(map_fit.params))
    if rounds:
        mcfg = problem.model_config
        lower = jnp.minimum(point["sigma"], mcfg.sigma_prior_scale)
        steps = [len(a) for a in np.array_split(np.arange(s.map_steps - first), rounds)]
        for r in range(rounds):
            fixed_values = _empirical_bayes_point(point, mcfg, lower)
            log.info(
                "MAP empirical-Bayes round %d/%d: median sigma %.3g -> %.3g",
                r + 1, rounds, float(jnp.median(point["sigma"])),
                float(jnp.median(fixed_values["sigma"])),
            )  # fmt: skip
            pairs = {g: e for g, e in _EB_SCALES.items() if g in fixed_values}
            globals_ = {g: fixed_values[g] for g in pairs}
            fixed = handlers.condition(hybrid_model, data=globals_)
            start = {
                k: v
                for k, v in map_fit.params.items()
                if not any(k.startswith(f"{g}_") for g in globals_)
            }
            start.update({f"{e}_auto_loc": fixed_values[e] for e in pairs.values()})
            map_fit = _map_fit(problem, fixed, {}, key=keys[r + 1], steps=steps[r], cfg=cfg,
                               init_params=start, progress_bar=progress_bar)  # fmt: skip
            losses.append(np.asarray(map_fit.losses))
            point = {**dict(map_fit.guide.median(map_fit.params)), **globals_}
        point = _empirical_bayes_point(point, mcfg, lower)
    net, process = problem.net, problem.process
    if not problem.model_config.network.bayesian_weights:
        # point mode: the prior network's and a hybrid process network's MAP weights
        net = network_from_params(problem.net, map_fit.params)
        process = process_from_params(problem.process, map_fit.params)
    global_values = {k: v for k, v in point.items() if k not in LOCAL_SITES}
    guide = problem_guide(cfg, global_values)
    kwargs = {**problem.model_kwargs, "net": net, "process": process}
    warm = dataclasses.replace(problem, net=net, process=process, guide=guide, model_kwargs=kwargs)
    losses = np.concatenate(losses)
    finite = losses[np.isfinite(losses)]
    log.info(
        "MAP warm start done: loss %.6g -> %.6g",
        float(finite[0]) if finite.size else float("nan"),
        float(finite[-1]) if finite.size else float("nan"),
    )
    return WarmStart(warm, _local_loc_params(guide, point), losses)
