"""Bayesian hybrid modelling: packed data, observation operators, the NumPyro program.

Modules: :mod:`.data` (pack a canonical dataset into JAX arrays), :mod:`.operators`
(model outputs -> observable streams), :mod:`.config` (validated configuration),
:mod:`.prior_net` (environment -> parameter network), :mod:`.likelihood` (masked
observation likelihoods, EDC potential), :mod:`.model` (the NumPyro program).
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
    "NetworkConfig",
    "ParameterLayout",
    "PriorNetOutput",
    "StreamData",
    "aggregate",
    "aggregation_index",
    "check_data",
    "hybrid_model",
    "init_prior_net",
    "initial_values",
    "model_streams",
    "pack",
    "predict_stream",
    "simulate_sites",
    "site_dims",
    "steady_state_edc",
    "uninformed_parameters",
    "weight_log_prior",
]
