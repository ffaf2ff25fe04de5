"""NUTS for the hybrid model on small problems (one or a few sites), full batch.

:func:`fit_nuts` runs NumPyro's :class:`~numpyro.infer.NUTS` on the same
:func:`~.model.hybrid_model` that SVI fits, without site subsampling, as a reference
for the variational approximation on problems small enough for MCMC.

What NUTS samples depends on the network mode (:class:`~.config.NetworkConfig`):

- **Bayesian weights** (``bayesian_weights=True``): the weights are latent sample sites
  ``prior_net/<path>`` and NUTS samples them with ``sigma``, ``eps`` (and any learned
  ``noise_<stream>``).
- **Point weights** (the default): the weights are the ``numpyro.param`` site
  ``prior_net$params``, which MCMC cannot sample. NUTS then *conditions on* a given
  network: the weights are fixed with :func:`numpyro.handlers.substitute`
  (:func:`condition_on_network`) and only ``sigma``, ``eps`` (and noise scales) are
  sampled. Pass the network to condition on as ``net`` (e.g. the initial network of
  :func:`~.model.init_prior_net`), or its weights from an SVI fit as ``net_params``
  (``SVIFit.params``, see :func:`network_from_params`). The weight prior factor is then
  a constant and does not affect the samples.

Randomness comes only from the explicit ``key``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from numpyro import handlers
from numpyro.diagnostics import summary
from numpyro.infer import MCMC, NUTS, init_to_value

from .config import ModelConfig
from .data import FitData
from .discrepancy import MONTHS
from .likelihood import NOISE_SITE_PREFIXES
from .model import NET_NAME, hybrid_model, initial_values
from .prior_net import EnvPriorNet

__all__ = [
    "DIAGNOSED_SITES",
    "NUTSDiagnostics",
    "NUTSFit",
    "condition_on_network",
    "fit_nuts",
    "network_from_params",
]

log = logging.getLogger(__name__)

#: name of the point-mode weight param site of the program
_PARAM_SITE = f"{NET_NAME}$params"
#: sites whose convergence :class:`NUTSDiagnostics` reports (``noise_<stream>`` too)
DIAGNOSED_SITES: tuple[str, ...] = ("sigma", "z")


# --------------------------------------------------------------------------- network


def network_from_params(net: EnvPriorNet, params: Mapping[str, Any] | Any) -> EnvPriorNet:
    """Return the network ``net`` with the point-mode weights of a fit.

    Parameters
    ----------
    net : EnvPriorNet
        A network of the right structure (e.g. the one the fit started from).
    params : mapping or pytree
        The fit's parameters (e.g. ``SVIFit.params``), from which the entry
        ``"prior_net$params"`` is taken, or that entry itself (the network's arrays,
        as :func:`equinox.partition` leaves them).

    Returns
    -------
    EnvPriorNet
        ``net`` with its arrays replaced.

    Raises
    ------
    ValueError
        If the weights do not match the network's structure or shapes.
    """
    if isinstance(params, Mapping):
        if _PARAM_SITE not in params:
            raise ValueError(
                f"params: expected an entry {_PARAM_SITE!r} (point-mode network weights), "
                f"found {sorted(params)}"
            )
        params = params[_PARAM_SITE]
    template = eqx.filter(net, eqx.is_inexact_array)
    if jax.tree.structure(template) != jax.tree.structure(params):
        raise ValueError(
            "params: the network weights do not match the structure of net "
            "(a network built with other widths or options)"
        )
    shapes = [
        (jnp.shape(a), jnp.shape(b))
        for a, b in zip(*map(jax.tree.leaves, (template, params)), strict=True)
    ]
    bad = [f"{b} (expected {a})" for a, b in shapes if a != b]
    if bad:
        raise ValueError(f"params: network weights of wrong shape: {', '.join(bad)}")
    return eqx.combine(params, net)


def condition_on_network(net: EnvPriorNet) -> Callable[..., None]:
    """:func:`~.model.hybrid_model` with the point-mode weights fixed to ``net``'s.

    The ``prior_net$params`` site is substituted (:func:`numpyro.handlers.substitute`)
    by the network's arrays and hidden (:func:`numpyro.handlers.block`) from outer
    handlers, so inference (MCMC, and also SVI, which then does not optimise the
    weights) and prediction with the returned model condition on these weights,
    whatever network is passed to the model as ``net``.

    Parameters
    ----------
    net : EnvPriorNet
        The network whose weights are held fixed.

    Returns
    -------
    callable
        A NumPyro model with the signature of :func:`~.model.hybrid_model`.
    """
    weights = eqx.filter(net, eqx.is_inexact_array)
    fixed = handlers.substitute(hybrid_model, data={_PARAM_SITE: weights})
    # hidden from outer handlers: SVI does not see (and so does not optimise) the weights
    return handlers.block(fixed, hide=[_PARAM_SITE])


# --------------------------------------------------------------------------- results


class NUTSDiagnostics(NamedTuple):
    """Convergence diagnostics of a NUTS run (:func:`numpyro.diagnostics.summary`)."""

    divergences: int  #: number of divergent transitions after warm-up (all chains)
    r_hat: dict[str, np.ndarray]  #: split R-hat per diagnosed site, the site's shape
    ess: dict[str, np.ndarray]  #: effective sample size per diagnosed site
    num_samples: int  #: draws after warm-up, all chains together
    seconds: float  #: wall-clock time of ``mcmc.run`` (warm-up, compilation included)

    @property
    def max_r_hat(self) -> float:
        """Largest R-hat over the diagnosed sites (NaN-free entries)."""
        values = np.concatenate([np.ravel(v) for v in self.r_hat.values()])
        return float(np.nanmax(values)) if values.size else float("nan")

    @property
    def min_ess(self) -> float:
        """Smallest effective sample size over the diagnosed sites."""
        values = np.concatenate([np.ravel(v) for v in self.ess.values()])
        return float(np.nanmin(values)) if values.size else float("nan")


class NUTSFit(NamedTuple):
    """The result of :func:`fit_nuts`."""

    mcmc: MCMC  #: the NumPyro MCMC object (``get_samples(group_by_chain=True)`` etc.)
    samples: dict[str, np.ndarray]  #: draws ``(sample, ...)``, chains concatenated
    diagnostics: NUTSDiagnostics  #: divergences, R-hat, ESS
    net: EnvPriorNet  #: the network the fit conditioned on (point mode) / started from


def _diagnose(mcmc: MCMC, seconds: float) -> NUTSDiagnostics:
    grouped = mcmc.get_samples(group_by_chain=True)
    names = [k for k in grouped if k in DIAGNOSED_SITES or k.startswith(NOISE_SITE_PREFIXES)]
    stats = summary({k: np.asarray(grouped[k]) for k in names}, group_by_chain=True)
    diverging = mcmc.get_extra_fields().get("diverging")
    divergences = int(np.sum(np.asarray(diverging))) if diverging is not None else 0
    n = int(np.prod(np.shape(grouped[names[0]])[:2])) if names else 0
    return NUTSDiagnostics(
        divergences=divergences,
        r_hat={k: np.asarray(stats[k]["r_hat"]) for k in names},
        ess={k: np.asarray(stats[k]["n_eff"]) for k in names},
        num_samples=n,
        seconds=seconds,
    )


# --------------------------------------------------------------------------- fitting


def fit_nuts(
    data: FitData,
    *,
    process: Any,
    net: EnvPriorNet,
    config: ModelConfig,
    key: jax.Array,
    num_warmup: int = 500,
    num_samples: int = 500,
    num_chains: int = 1,
    target_accept: float = 0.8,
    init_values: Mapping[str, Any] | None = None,
    net_params: Mapping[str, Any] | Any | None = None,
    max_tree_depth: int = 10,
    dense_mass: bool = False,
    chain_method: Literal["sequential", "vectorized", "parallel"] = "sequential",
    progress_bar: bool = False,
) -> NUTSFit:
    """Sample the hybrid model's posterior with NUTS (full batch, no subsampling).

    Meant for problems small enough for MCMC (one or a few sites): every step
    simulates every site, and NUTS may take up to ``2 ** max_tree_depth`` gradient
    evaluations per draw.

    Parameters
    ----------
    data : FitData
        Packed data (:func:`~.data.pack`).
    process : AbstractDalec
        The process model.
    net : EnvPriorNet
        The prior network. Point mode: the network NUTS conditions on (its weights are
        held fixed; see the module docstring), unless ``net_params`` is given. Bayesian
        mode: the initial weights (starting point of the chains).
    config : ModelConfig
        The model's configuration; ``config.network.bayesian_weights`` decides whether
        the weights are sampled or held fixed.
    key : jax.Array
        PRNG key; the only randomness.
    num_warmup, num_samples : int
        Warm-up (adaptation) and kept draws per chain.
    num_chains : int
        Number of chains (R-hat needs more than one to compare chains; with one chain
        it is the split R-hat of its halves).
    target_accept : float
        Target acceptance probability of the step-size adaptation, in ``(0, 1)``;
        raise it (e.g. 0.9-0.95) when there are divergences.
    init_values : mapping, optional
        Initial values of latent sites (constrained), for
        :func:`~numpyro.infer.init_to_value`, over the defaults: ``sigma`` at the prior
        median, ``eps = 0`` (every site at the network's location) and, with Bayesian
        weights, the weights of ``net`` and of a hybrid ``process``
        (:func:`~.model.initial_values`). Sites not
        given start uniformly in ``(-2, 2)`` in unconstrained space.
    net_params : mapping or pytree, optional
        Point mode only: network weights to condition on instead of ``net``'s, e.g. the
        parameters of an SVI fit (``SVIFit.params``; :func:`network_from_params`).
    max_tree_depth : int
        Maximum depth of the NUTS trajectory tree.
    dense_mass : bool
        Adapt a dense instead of a diagonal mass matrix.
    chain_method : {"sequential", "vectorized", "parallel"}
        How several chains run (``"parallel"`` needs one device per chain, e.g.
        :func:`numpyro.set_host_device_count` on CPU).
    progress_bar : bool
        Show NumPyro's progress bar.

    Returns
    -------
    NUTSFit
        The MCMC object, the draws (latent and deterministic sites ``sigma``, ``eps``,
        ``z_loc``, ``z``, ``theta``, ... with a leading ``sample`` axis, chains
        concatenated), the diagnostics and the network used.

    Raises
    ------
    ValueError
        For invalid settings, or ``net_params`` with Bayesian weights.
    """
    if num_warmup < 0:
        raise ValueError(f"num_warmup: expected an integer >= 0, found {num_warmup}")
    if num_samples < 1 or num_chains < 1:
        raise ValueError(
            f"num_samples and num_chains: expected integers >= 1, found {num_samples} "
            f"and {num_chains}"
        )
    if not 0.0 < target_accept < 1.0:
        raise ValueError(f"target_accept: expected a number in (0, 1), found {target_accept}")
    bayesian = config.network.bayesian_weights
    if bayesian and net_params is not None:
        raise ValueError(
            "net_params: only for point-mode weights; with bayesian_weights=True NUTS "
            "samples the weights (pass starting values through net or init_values)"
        )
    if net_params is not None:
        net = network_from_params(net, net_params)
    model = hybrid_model if bayesian else condition_on_network(net)

    values: dict[str, Any] = dict(initial_values(net, config, process))
    values["eps"] = jnp.zeros((data.env.shape[0], net.n_out))
    if config.likelihood.discrepancy:
        n_disc = len(config.likelihood.discrepancy) * MONTHS
        values["discrepancy_eps"] = jnp.zeros((data.env.shape[0], n_disc))
    values.update(init_values or {})
    kernel = NUTS(
        model,
        target_accept_prob=target_accept,
        max_tree_depth=max_tree_depth,
        dense_mass=dense_mass,
        init_strategy=init_to_value(values=values),
    )
    mcmc = MCMC(
        kernel,
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        chain_method=chain_method,
        progress_bar=progress_bar,
    )
    log.info(
        "NUTS: %d chain(s) x (%d warm-up + %d draws), %d site(s), %s weights",
        num_chains,
        num_warmup,
        num_samples,
        data.env.shape[0],
        "sampled" if bayesian else "fixed",
    )
    start = time.perf_counter()
    mcmc.run(key, data, process=process, net=net, config=config)
    samples = jax.block_until_ready(mcmc.get_samples())
    seconds = time.perf_counter() - start
    diagnostics = _diagnose(mcmc, seconds)
    log.info(
        "NUTS done in %.1f s: %d divergence(s), max R-hat %.3f, min ESS %.0f",
        seconds,
        diagnostics.divergences,
        diagnostics.max_r_hat,
        diagnostics.min_ess,
    )
    return NUTSFit(
        mcmc=mcmc,
        samples={k: np.asarray(v) for k, v in samples.items()},
        diagnostics=diagnostics,
        net=net,
    )
