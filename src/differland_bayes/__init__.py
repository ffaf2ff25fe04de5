"""differland_bayes: Bayesian hybrid land-carbon modelling with differentiable DALEC models.

The process models are pure JAX (:mod:`differland_bayes.process`); forcing is built from
unit-tagged xarray datasets (:func:`build_forcing`); :func:`simulate_dataset` runs a model
over a dataset and returns outputs with units. Attributes are imported lazily, so that
``import differland_bayes`` (and ``differland --help``) stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__

_EXPORTS = {
    "ForcingError": "forcing",
    "build_forcing": "forcing",
    "monthly_means": "forcing",
    "ParamInfo": "params",
    "ParamTable": "params",
    "to_physical": "params",
    "to_unconstrained": "params",
    "MODELS": "process",
    "Dalec990": "process",
    "Dalec993": "process",
    "get_model": "process",
    "simulate": "process",
    "simulate_dataset": "simulation",
    "read_dataset": "dataset",
    "write_dataset": "dataset",
    "ValidationReport": "validate",
    "validate_dataset": "validate",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'differland_bayes' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
