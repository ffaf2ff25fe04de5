"""The hybrid hierarchical NumPyro model: prior network, non-centred residuals, DALEC.

For each site ``s`` with standardised environment ``x_s``::

    loc_s, m_s = f_phi(x_s)                       # EnvPriorNet (m_s = 1 without scale head)
    sigma_p    ~ LogNormal(log(sigma_prior_scale), sigma_prior_log_sd)
    eps_sp     ~ Normal(0, 1)                     # non-centred residual
    z_sp       = loc_sp + (sigma_p + sigma_floor) * m_sp * eps_sp
    theta_s    = bounded transform of z_s (fixed parameters inserted at their values)
    outputs_s  = simulate(process, theta_s, forcing_s)          # vmap over the batch
    y_s,k,t    ~ Normal / StudentT(A_k(operator_k(outputs_s))_t, scale_k,s,t), masked

``A_k`` is the identity, or the mean over the days of each observed month
(``FitData.aggregation``, :func:`~.operators.predict_observed`; ``t`` then counts
months).

Sites of the program (``P`` = number of free parameters, ``B`` = site batch):

============================  =========  ===================  ==============================
name                          kind       shape                meaning
============================  =========  ===================  ==============================
``prior_net$params``          param      pytree               network weights (point mode)
``prior_net/<path>``          sample     weight shape         weights (Bayesian mode)
``prior_net_weight_prior``    factor     ()                   weight prior (point mode)
``process_nn$params``         param      pytree               process-model network weights
``process_nn/<path>``         sample     weight shape         the same (Bayesian mode)
``process_nn_weight_prior``   factor     ()                   their weight prior (point mode)
``sigma``                     sample     (P,)                 residual sd per parameter
``noise_<stream>``            sample     ()                   learned noise sd of a stream
``relnoise_<stream>``         sample     ()                   noise sd fraction of |flux|
``eps``                       sample     (B, P)               standard-normal residual
``z_loc``                     determ.    (B, P)               network location of ``z``
``z``                         determ.    (B, P)               unconstrained free parameters
``theta``                     determ.    (B, P_all)           physical parameters and pools
``obs_<stream>``              sample     (B, T)               observations (masked)
``edc``                       factor     (B, 1)               EDC potential (if enabled)
``discrepancy_sd``            sample     (K,)                 seasonal discrepancy sd
``discrepancy_rho``           sample     (K,)                 share of model anomaly kept
``discrepancy_coef``          sample     (K, P, F + 1)        coefficients of its mean
``discrepancy_eps``           sample     (B, K * 12)          its standard-normal residual
``discrepancy``               determ.    (B, K * 12)          discrepancy per month
============================  =========  ===================  ==============================

The ``discrepancy*`` sites exist only for the ``K`` streams of
``LikelihoodConfig.discrepancy`` (:mod:`.discrepancy`); their prediction ``A_k(...)`` is
then corrected per site and calendar month before the likelihood.

Plates: ``parameter`` (``dim=-1``, size ``P``), ``site`` (``dim=-2``, size ``n_sites``,
optionally subsampled: local sites are scaled by ``n_sites / subsample_size`` so the
ELBO stays unbiased), ``time`` (``dim=-1`` inside ``site``). ``<path>`` in Bayesian
mode is the weight's Equinox key path, e.g. ``prior_net/trunk[0].weight``; NumPyro's
``random_eqx_module`` also registers ``prior_net$params`` there, which then goes unused.
Fixed parameters (``ModelConfig.fixed_parameters``) appear in ``theta`` only.

The ``process_nn`` sites exist only when the process model holds trainable arrays (a
hybrid option such as ``get_model(..., water_stress="nn_paw", key=...)``); they are
registered like the prior network's (``eqx_module`` plus the weight-prior factor in point
mode, ``random_eqx_module`` with the same ``Normal(0, weight_prior_scale / sqrt(fan_in))``
/ ``Normal(0, bias_prior_scale)`` priors in Bayesian mode), and the registered module is
the process simulated. Static fields (e.g. standardisation constants) are not registered.

Guides: ``AutoNormal`` and ``AutoDelta`` work directly (also subsampled). For a
structured guide, ``AutoGuideList`` with a low-rank guide of
``block(model, hide=[*LOCAL_SITES, *DETERMINISTIC_SITES])`` and an ``AutoNormal`` of
``block(model, expose=[*LOCAL_SITES, *LOCAL_PLATES])`` (NumPyro raises ``KeyError``
for an unexposed plate and ``ValueError`` for an exposed deterministic site).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.contrib.module import eqx_module, random_eqx_module

from ..params import ParamTable
from ..process.budget import equilibrium_pools
from ..process.simulate import simulate
from .config import ModelConfig, NetworkConfig
from .data import FitData, StreamData
from .discrepancy import (
    DISCREPANCY_PLATE,
    apply_discrepancy,
    coef_shape,
    sample_discrepancy,
    sample_discrepancy_globals,
    southern_sites,
)
from .likelihood import (
    add_edc_potential,
    add_stream_likelihood,
    needs_learned_noise,
    sample_noise_scales,
    sample_relative_noise,
    steady_state_edc,
)
from .operators import predict_observed
from .prior_net import EnvPriorNet, weight_prior_sd

__all__ = [
    "DETERMINISTIC_SITES",
    "LOCAL_PLATES",
    "LOCAL_SITES",
    "NET_NAME",
    "PROCESS_NN_NAME",
    "ParameterLayout",
    "check_data",
    "hybrid_model",
    "init_prior_net",
    "initial_values",
    "simulate_sites",
    "site_dims",
    "uninformed_parameters",
    "weight_log_prior",
]

#: name of the network in the program (``numpyro.param`` / sample-site prefix)
NET_NAME = "prior_net"
#: name of the process model's own network weights, if it has any
PROCESS_NN_NAME = "process_nn"
#: local latent sites (one value per site; inside the subsampled ``site`` plate)
LOCAL_SITES: tuple[str, ...] = ("eps", "discrepancy_eps")
#: plates the local sites live in; a guide of the local sites must expose them all
LOCAL_PLATES: tuple[str, ...] = ("site", "parameter", DISCREPANCY_PLATE)
#: deterministic sites; sub-guides of an ``AutoGuideList`` must hide them
DETERMINISTIC_SITES: tuple[str, ...] = ("z_loc", "z", "theta", "discrepancy")


class ParameterLayout:
    """Which parameters of a table are free (sampled) and which are held fixed.

    Parameters
    ----------
    table : ParamTable
        The process model's full table (parameters then initial pools).
    fixed : mapping of str to float
        Table names -> physical values held fixed at every site.
    circular_phases : bool
        Sample the rows with a ``period`` (phases) on the periodic transform
        (:meth:`~differland_bayes.params.ParamTable.with_periodic_transform`).

    Raises
    ------
    ValueError
        For an unknown name, a value outside the parameter's bounds, or when nothing
        would be left to sample.
    """

    def __init__(
        self, table: ParamTable, fixed: Mapping[str, float], *, circular_phases: bool = False
    ) -> None:
        unknown = sorted(set(fixed) - set(table.names))
        if unknown:
            raise ValueError(
                f"fixed_parameters: unknown parameter(s) {unknown}; available: {list(table.names)}"
            )
        bad = [
            f"{n}={fixed[n]!r} (expected [{table[n].lower:g}, {table[n].upper:g}] {table[n].units})"
            for n in table.names
            if n in fixed and not table[n].lower <= fixed[n] <= table[n].upper
        ]
        if bad:
            raise ValueError(f"fixed_parameters outside their bounds: {', '.join(bad)}")
        if len(fixed) == len(table):
            raise ValueError("fixed_parameters: every parameter is fixed; nothing left to sample")
        self.table = table
        free = ParamTable(r for r in table if r.name not in fixed)
        self.free_table = free.with_periodic_transform() if circular_phases else free
        self.fixed_names: tuple[str, ...] = tuple(n for n in table.names if n in fixed)
        self.fixed_values = np.array([fixed[n] for n in self.fixed_names], dtype=np.float64)
        position = {n: i for i, n in enumerate(self.free_table.names + self.fixed_names)}
        #: gather index: table order from [free..., fixed...]
        self.perm = np.array([position[n] for n in table.names], dtype=np.int32)

    @classmethod
    def for_config(cls, table: ParamTable, config: ModelConfig) -> ParameterLayout:
        """Build the layout of a model configuration (fixed parameters, phase transform).

        Parameters
        ----------
        table : ParamTable
            The process model's full table.
        config : ModelConfig
            Supplies ``fixed_parameters`` and ``circular_phases``.
        """
        return cls(table, config.fixed_parameters, circular_phases=config.circular_phases)

    @property
    def free_names(self) -> tuple[str, ...]:
        """Names of the sampled parameters (order of ``z`` and ``sigma``)."""
        return self.free_table.names

    @property
    def n_free(self) -> int:
        """Number of sampled parameters."""
        return len(self.free_table)

    def assemble(self, z: jnp.ndarray) -> jnp.ndarray:
        """Physical vectors in table order from unconstrained free parameters.

        Parameters
        ----------
        z : jax.Array
            ``(..., n_free)`` unconstrained values of the free parameters.

        Returns
        -------
        jax.Array
            ``(..., len(table))`` physical values, fixed parameters at their values.
        """
        theta_free = self.free_table.to_physical(z)
        fixed = jnp.broadcast_to(
            jnp.asarray(self.fixed_values, theta_free.dtype),
            theta_free.shape[:-1] + (len(self.fixed_names),),
        )
        return jnp.concatenate([theta_free, fixed], axis=-1)[..., self.perm]


def init_prior_net(n_env: int, process: Any, config: ModelConfig, *, key: jax.Array) -> EnvPriorNet:
    """Build the prior network matching a process model and configuration.

    Parameters
    ----------
    n_env : int
        Number of environment predictors (``data.env.shape[1]``).
    process : AbstractDalec
        The process model (its table decides the heads).
    config : ModelConfig
        Network widths and activation, fixed parameters (not predicted), scale head.
    key : jax.Array
        PRNG key of the initial weights.
    """
    layout = ParameterLayout.for_config(process.table, config)
    n = config.network
    return EnvPriorNet(
        n_env,
        layout.free_table,
        n.hidden,
        key=key,
        activation=n.activation,
        negative_slope=n.negative_slope,
        scale_head=config.predict_scale,
        scale_floor=n.scale_floor,
    )


def _weight_prior(config: NetworkConfig):
    def prior(name: str, shape: tuple[int, ...]) -> dist.Distribution:
        return dist.Normal(
            0.0, weight_prior_sd(shape, config.weight_prior_scale, config.bias_prior_scale)
        )

    return prior


def weight_log_prior(net: eqx.Module, config: NetworkConfig) -> jnp.ndarray:
    """Log density of the network's arrays under the weight prior (a scalar).

    Weight matrices: ``Normal(0, weight_prior_scale / sqrt(fan_in))``; biases:
    ``Normal(0, bias_prior_scale)`` (:func:`~.prior_net.weight_prior_sd`).
    """
    leaves = jax.tree.leaves(eqx.filter(net, eqx.is_inexact_array))
    total = jnp.zeros(())
    for w in leaves:
        sd = weight_prior_sd(w.shape, config.weight_prior_scale, config.bias_prior_scale)
        total = total + jnp.sum(dist.Normal(0.0, sd).log_prob(w))
    return total


def _static_bool(value: Any, what: str) -> bool:
    if isinstance(value, jax.core.Tracer):
        raise TypeError(
            f"{what} must be a Python bool, found a traced value; pass FitData to jitted "
            "code as a closure constant or keep has_unc out of the traced arguments"
        )
    return bool(value)


def _concrete(x: Any) -> bool:
    return not isinstance(x, jax.core.Tracer)


def check_data(data: FitData, config: ModelConfig) -> None:
    """Host-side checks of packed data against a configuration.

    Raises
    ------
    ValueError
        If a stream whose noise is its own uncertainty alone has observed entries
        without a positive uncertainty, or the environment is not finite.
    """
    if _concrete(data.env) and not np.all(np.isfinite(np.asarray(data.env))):
        raise ValueError("env: expected finite standardised predictors, found NaN or inf")
    lik = config.likelihood
    for name, s in data.streams.items():
        has_unc = _static_bool(data.has_unc[name], f"has_unc[{name!r}]")
        if needs_learned_noise(has_unc, lik) or not (_concrete(s.unc) and _concrete(s.mask)):
            continue
        missing = int(np.sum(np.asarray(s.mask) & ~(np.asarray(s.unc) > 0)))
        if missing:
            raise ValueError(
                f"stream {name!r}: {missing} observed value(s) without a positive uncertainty; "
                "expected <stream>_unc > 0 wherever observed, or set "
                "LikelihoodConfig(add_learned_noise=True) or use_data_uncertainty=False"
            )


def _check_net(net: Any, layout: ParameterLayout, config: ModelConfig, n_env: int) -> None:
    if not isinstance(net, EnvPriorNet):
        raise TypeError(f"net: expected an EnvPriorNet, found {type(net).__name__}")
    if net.names != layout.free_names:
        raise ValueError(
            f"net predicts {net.n_out} parameters {list(net.names)} but the model samples "
            f"{layout.n_free} {list(layout.free_names)}; build it with init_prior_net"
        )
    if net.n_env != n_env:
        raise ValueError(f"net expects {net.n_env} predictors, the data have {n_env}")
    if config.predict_scale != (net.scale_head is not None):
        raise ValueError(
            f"ModelConfig.predict_scale={config.predict_scale} but the network "
            f"{'has' if net.scale_head is not None else 'lacks'} a scale head; "
            "build it with init_prior_net"
        )


@eqx.filter_jit
def simulate_sites(process: Any, params: Any, pools0: Any, forcing: Any) -> Any:
    """Simulate a batch of sites (``vmap`` of :func:`~differland_bayes.process.simulate`).

    Jitted with :func:`equinox.filter_jit`, so repeated eager calls (tracing the model,
    ``Predictive``) reuse one compilation per process model and shape; inside an outer
    ``jit`` it is inlined as a nested call.

    Parameters
    ----------
    process : AbstractDalec
        The process model.
    params, pools0 : NamedTuple
        ``model.Params`` and ``model.Pools`` with fields ``(site,)``.
    forcing : NamedTuple
        ``model.Forcing`` with fields ``(site, time)``.

    Returns
    -------
    NamedTuple
        ``model.Outputs`` with fields ``(site, time)``.
    """
    return jax.vmap(lambda p, q, f: simulate(process, p, q, f))(params, pools0, forcing)


def _take_sites(data: FitData, idx: jnp.ndarray) -> FitData:
    n = data.env.shape[0]

    def take(a: Any) -> Any:
        return a[idx] if jnp.ndim(a) >= 1 and jnp.shape(a)[0] == n else a

    agg = data.aggregation
    return FitData(
        forcing=jax.tree.map(take, data.forcing),
        env=data.env[idx],
        streams={
            k: StreamData(value=s.value[idx], mask=s.mask[idx], unc=s.unc[idx])
            for k, s in data.streams.items()
        },
        has_unc=data.has_unc,
        aggregation=None
        if agg is None
        else agg._replace(weight={k: w[idx] for k, w in agg.weight.items()}),
        month=data.month,
    )


def hybrid_model(
    data: FitData,
    *,
    process: Any,
    net: EnvPriorNet,
    config: ModelConfig,
    subsample_size: int | None = None,
    predict: bool = False,
    equilibrium_iterations: int = 0,
) -> None:
    """Run the NumPyro program of the hybrid model (sites: see the module docstring).

    Parameters
    ----------
    data : FitData
        Packed data (:func:`~differland_bayes.bayes.data.pack`); the spin-up window is
        excluded there (``spinup_steps``).
    process : AbstractDalec
        The process model. If it holds trainable arrays (hybrid options), they are
        registered as ``process_nn`` params / samples and initialised at its values.
    net : EnvPriorNet
        Initial prior network (:func:`init_prior_net`); its arrays are the initial
        values of the ``prior_net$params`` param.
    config : ModelConfig
        The model's configuration.
    subsample_size : int, optional
        Sites per minibatch; None uses every site. Local sites (``eps``, observations,
        EDC) are scaled by ``n_sites / subsample_size``.
    predict : bool
        Draw the observation sites instead of conditioning on the data (prior and
        posterior predictive); masks still apply to the log density only.
    equilibrium_iterations : int
        If positive, replace the drawn initial carbon pools by pools in dynamic
        equilibrium with each site's parameters and forcing
        (:func:`~differland_bayes.process.budget.equilibrium_pools`, this many
        iterations); ``theta`` then holds the equilibrium pools. Used for sites
        predicted from their environment alone; 0 (the fit) keeps the drawn pools.
    """
    layout = ParameterLayout.for_config(process.table, config)
    n_sites, n_env = data.env.shape
    _check_net(net, layout, config, n_env)
    if subsample_size is not None and not 1 <= subsample_size <= n_sites:
        raise ValueError(
            f"subsample_size: expected 1 <= subsample_size <= n_sites ({n_sites}), "
            f"found {subsample_size}"
        )
    check_data(data, config)
    if config.likelihood.discrepancy and data.month is None:
        raise ValueError(
            "data.month: the seasonal discrepancy of streams "
            f"{list(config.likelihood.discrepancy)} needs the calendar month of every "
            "observation step, found None; build the data with pack()"
        )
    has_unc = {k: _static_bool(data.has_unc[k], f"has_unc[{k!r}]") for k in data.streams}
    ncfg = config.network
    lik = config.likelihood

    if ncfg.bayesian_weights:
        nn = random_eqx_module(NET_NAME, net, prior=_weight_prior(ncfg))
    else:
        nn = eqx_module(NET_NAME, net)
        numpyro.factor(f"{NET_NAME}_weight_prior", weight_log_prior(nn, ncfg))
    if jax.tree.leaves(eqx.filter(process, eqx.is_inexact_array)):
        # hybrid process model: its network weights are global latents like the prior net's
        if ncfg.bayesian_weights:
            process = random_eqx_module(PROCESS_NN_NAME, process, prior=_weight_prior(ncfg))
        else:
            process = eqx_module(PROCESS_NN_NAME, process)
            numpyro.factor(f"{PROCESS_NN_NAME}_weight_prior", weight_log_prior(process, ncfg))

    with numpyro.plate("parameter", layout.n_free, dim=-1):
        sigma = numpyro.sample(
            "sigma", dist.LogNormal(math.log(config.sigma_prior_scale), config.sigma_prior_log_sd)
        )
    sd = sigma + config.sigma_floor
    noise = sample_noise_scales(has_unc, lik)
    relative = sample_relative_noise(has_unc, lik)
    disc = sample_discrepancy_globals(lik, n_env)

    with numpyro.plate("site", n_sites, subsample_size=subsample_size, dim=-2) as idx:
        batch = data if subsample_size is None else _take_sites(data, idx)
        out = jax.vmap(nn)(batch.env)
        resid_sd = sd if out.scale is None else sd * out.scale
        with numpyro.plate("parameter", layout.n_free, dim=-1):
            eps = numpyro.sample("eps", dist.Normal(0.0, 1.0))
        z = out.loc + resid_sd * eps
        numpyro.deterministic("z_loc", out.loc)
        numpyro.deterministic("z", z)
        theta = layout.assemble(z)
        params, pools0 = process.split(theta)
        if equilibrium_iterations > 0:
            pools0 = jax.vmap(
                lambda p, q, f: equilibrium_pools(
                    process, p, q, f, iterations=equilibrium_iterations
                )
            )(params, pools0, batch.forcing)
            theta = jnp.concatenate([theta[..., : len(params)], jnp.stack(pools0, -1)], -1)
        numpyro.deterministic("theta", theta)
        outputs = simulate_sites(process, params, pools0, batch.forcing)
        delta = None
        if disc is not None:
            delta = sample_discrepancy(disc, batch.env, southern_sites(batch.forcing))
        for name, stream in batch.streams.items():
            mean = predict_observed(name, outputs, stream.value.shape[-1], batch.aggregation)
            if delta is not None and name in lik.discrepancy:
                k = lik.discrepancy.index(name)
                mean = apply_discrepancy(mean, delta[:, k], disc.rho[k], batch.month)
            add_stream_likelihood(
                name,
                mean,
                stream,
                noise=noise[name],
                has_unc=has_unc[name],
                config=lik,
                predict=predict,
                relative=relative[name],
                month=batch.month,
            )
        if config.edc_scale is not None:
            add_edc_potential(steady_state_edc(outputs, pools0, batch.forcing), config.edc_scale)


#: parameters that only enter an output-only observation operator, by stream
_OPERATOR_PARAMETERS: dict[str, tuple[str, ...]] = {
    "sif": ("sif_alpha", "sif_beta_plus_three"),
    "vod": ("p_fol", "p_wood"),
}
#: parameters that no output depends on in the published models
_UNUSED_PARAMETERS: tuple[str, ...] = ("IWUE",)
#: fire parameters (inert without burned area, and in DALEC990)
_FIRE_PARAMETERS: tuple[str, ...] = ("foliar_cf", "ligneous_cf", "dom_cf", "resilience")


def uninformed_parameters(
    process: Any, streams: Any, *, burned_area: Any = None
) -> dict[str, float]:
    """Parameters that the given streams cannot inform, at their default values.

    A convenience for ``ModelConfig.fixed_parameters``: the SIF operator's parameters
    without a ``sif`` stream, the VOD operator's without ``vod``, parameters the model
    never uses (``IWUE``), and the fire parameters when the model has no fire
    (DALEC990) or, without a ``fire`` or ``nbe`` stream, when ``burned_area`` is given
    and zero everywhere.

    Parameters
    ----------
    process : AbstractDalec
        The process model.
    streams : iterable of str
        The streams of the fit (e.g. ``data.streams``).
    burned_area : array_like, optional
        The forcing's burned area (e.g. ``data.forcing.burned_area``).

    Returns
    -------
    dict
        Name -> physical value at ``z = 0`` (the geometric mean of the bounds).
    """
    streams = set(streams)
    names: list[str] = list(_UNUSED_PARAMETERS)
    for stream, params in _OPERATOR_PARAMETERS.items():
        if stream not in streams:
            names.extend(params)
    has_fire = "total_fire_combust" in process.Outputs._fields
    no_burning = burned_area is not None and not np.any(np.asarray(burned_area))
    if not has_fire or (no_burning and not streams & {"fire", "nbe"}):
        names.extend(_FIRE_PARAMETERS)
    table = process.table
    return {n: float(table[n].default) for n in table.names if n in names}


def _weight_sites(name: str, module: Any) -> dict[str, jnp.ndarray]:
    """``<name>/<path>`` -> array of every trainable array (``random_eqx_module`` names)."""
    params = eqx.filter(module, eqx.is_inexact_array)
    return {
        f"{name}/{jax.tree_util.keystr(path)[1:]}": leaf
        for path, leaf in jax.tree_util.tree_leaves_with_path(params)
    }


def initial_values(
    net: EnvPriorNet, config: ModelConfig, process: Any = None
) -> dict[str, jnp.ndarray]:
    """Return initial values of the global latent sites, for ``init_to_value``.

    ``sigma`` at the prior median and, with Bayesian weights, every
    ``prior_net/<path>`` at the network's initial weights (AutoGuides otherwise start
    the weights uniformly in ``(-2, 2)``, far from the network's own initialisation)
    and, for a hybrid ``process`` (one holding trainable arrays), every
    ``process_nn/<path>`` at the process network's initial weights (the module's own
    Glorot-normal initialisation, not draws from the weight prior). With a seasonal
    discrepancy, ``discrepancy_sd`` starts at its prior scale and ``discrepancy_rho`` at
    0.9 (near the model as it is), and the coefficients of an environment mean
    ``discrepancy_coef`` at zero. The local ``eps`` and ``discrepancy_eps`` are left to
    the guide's default.
    """
    values: dict[str, jnp.ndarray] = {
        "sigma": jnp.full((net.n_out,), config.sigma_prior_scale),
    }
    lik = config.likelihood
    if lik.discrepancy:
        values["discrepancy_sd"] = jnp.asarray(lik.discrepancy_scales())
        values["discrepancy_rho"] = jnp.full((len(lik.discrepancy),), 0.9)
        if lik.discrepancy_has_mean:
            values["discrepancy_coef"] = jnp.zeros(coef_shape(lik, net.n_env))
    if config.network.bayesian_weights:
        values.update(_weight_sites(NET_NAME, net))
        if process is not None:
            values.update(_weight_sites(PROCESS_NN_NAME, process))
    return values


def site_dims(data: FitData) -> dict[str, list[str]]:
    """Dimension names of the program's sites (e.g. for ArviZ ``dims=``).

    ``parameter`` indexes the free parameters (:attr:`ParameterLayout.free_names`),
    ``parameter_all`` the whole table (``theta``).
    """
    dims: dict[str, list[str]] = {
        "sigma": ["parameter"],
        "eps": ["site", "parameter"],
        "z_loc": ["site", "parameter"],
        "z": ["site", "parameter"],
        "theta": ["site", "parameter_all"],
    }
    for name in data.streams:
        dims[f"obs_{name}"] = ["site", "time"]
    dims["discrepancy_eps"] = ["site", DISCREPANCY_PLATE]
    dims["discrepancy"] = ["site", DISCREPANCY_PLATE]
    return dims
