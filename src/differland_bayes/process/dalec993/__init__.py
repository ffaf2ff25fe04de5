"""DALEC993, the monthly global model of DifferLand."""

from .model import Dalec993, Dalec993Drivers
from .structures import Dalec993Forcing, Dalec993Outputs, Dalec993Params, Dalec993Pools
from .table import DALEC993_TABLE

__all__ = [
    "DALEC993_TABLE",
    "Dalec993",
    "Dalec993Drivers",
    "Dalec993Forcing",
    "Dalec993Outputs",
    "Dalec993Params",
    "Dalec993Pools",
]
