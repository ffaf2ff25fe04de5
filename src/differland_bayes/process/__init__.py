"""Pure-JAX DALEC process models (no NumPyro in here)."""

from .base import MODES, AbstractDalec
from .dalec990 import DALEC990_TABLE, Dalec990
from .dalec993 import DALEC993_TABLE, Dalec993
from .registry import MODELS, WATER_STRESS, get_model
from .simulate import simulate

__all__ = [
    "DALEC990_TABLE",
    "DALEC993_TABLE",
    "Dalec990",
    "MODES",
    "AbstractDalec",
    "Dalec993",
    "MODELS",
    "WATER_STRESS",
    "get_model",
    "simulate",
]
