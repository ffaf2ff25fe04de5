"""Pure-JAX DALEC process models (no NumPyro in here)."""

from .base import MODES, AbstractDalec
from .dalec993 import DALEC993_TABLE, Dalec993
from .simulate import simulate

__all__ = ["DALEC993_TABLE", "MODES", "AbstractDalec", "Dalec993", "simulate"]
