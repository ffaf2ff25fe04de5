"""differland_bayes: Bayesian hybrid land-carbon modelling with differentiable DALEC models."""

from .params import ParamInfo, ParamTable, to_physical, to_unconstrained

__version__ = "0.1.0"

__all__ = ["ParamInfo", "ParamTable", "__version__", "to_physical", "to_unconstrained"]
