"""Bayesian hybrid modelling: packed data, observation operators, the NumPyro program.

Modules: :mod:`.data` (pack a canonical dataset into JAX arrays), :mod:`.operators`
(model outputs -> observable streams), :mod:`.config` (validated configuration),
:mod:`.prior_net` (environment -> parameter network), :mod:`.likelihood` (masked
observation likelihoods, EDC potential), :mod:`.model` (the NumPyro program),
:mod:`.mcmc` (NUTS on small problems), :mod:`.predict` (posterior predictive and
new-site predictions).
"""

from .config import (
    DEFAULT_NOISE_PRIOR_SCALE,
    FrozenMap,
    LikelihoodConfig,
    ModelConfig,
    NetworkConfig,
)
from .data import FitData, FitMeta, StreamData, pack
from .likelihood import steady_state_edc
from .mcmc import NUTSDiagnostics, NUTSFit, condition_on_network, fit_nuts, network_from_params
from .model import (
    DETERMINISTIC_SITES,
    LOCAL_PLATES,
    LOCAL_SITES,
    NET_NAME,
    ParameterLayout,
    check_data,
    hybrid_model,
    init_prior_net,
    initial_values,
    simulate_sites,
    site_dims,
    uninformed_parameters,
    weight_log_prior,
)
from .operators import aggregate, aggregation_index, model_streams, predict_stream
from .predict import (
    credible_interval,
    encode_sites,
    interval_coverage,
    posterior_draws,
    posterior_predictive,
    predict_new_sites,
    simulate_draws,
)
from .prior_net import EnvPriorNet, PriorNetOutput

__all__ = [
    "DEFAULT_NOISE_PRIOR_SCALE",
    "DETERMINISTIC_SITES",
    "LOCAL_PLATES",
    "LOCAL_SITES",
    "NET_NAME",
    "EnvPriorNet",
    "FitData",
    "FitMeta",
    "FrozenMap",
    "LikelihoodConfig",
    "ModelConfig",
    "NUTSDiagnostics",
    "NUTSFit",
    "NetworkConfig",
    "ParameterLayout",
    "PriorNetOutput",
    "StreamData",
    "aggregate",
    "aggregation_index",
    "check_data",
    "condition_on_network",
    "credible_interval",
    "encode_sites",
    "fit_nuts",
    "hybrid_model",
    "init_prior_net",
    "initial_values",
    "interval_coverage",
    "model_streams",
    "network_from_params",
    "pack",
    "posterior_draws",
    "posterior_predictive",
    "predict_new_sites",
    "predict_stream",
    "simulate_draws",
    "simulate_sites",
    "site_dims",
    "steady_state_edc",
    "uninformed_parameters",
    "weight_log_prior",
]
