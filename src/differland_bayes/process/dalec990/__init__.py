"""DALEC990, the daily site model of DifferLand v1.0."""

from .model import Dalec990, Dalec990Drivers
from .structures import Dalec990Forcing, Dalec990Outputs, Dalec990Params, Dalec990Pools
from .table import DALEC990_TABLE

__all__ = [
    "DALEC990_TABLE",
    "Dalec990",
    "Dalec990Drivers",
    "Dalec990Forcing",
    "Dalec990Outputs",
    "Dalec990Params",
    "Dalec990Pools",
]
