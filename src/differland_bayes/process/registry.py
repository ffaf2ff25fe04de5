"""String names of the process models and their water-stress options (CLI and configs only).

Library code passes model instances; names are for the edges (command line, TOML).
"""

from __future__ import annotations

from .base import MODES, AbstractDalec
from .components.canopy import AcmCanopy
from .components.water_stress import AbstractWaterStress, LinearWaterStress, NoWaterStress
from .dalec990 import Dalec990
from .dalec993 import Dalec993

__all__ = ["MODELS", "WATER_STRESS", "get_model"]

MODELS: dict[str, type[AbstractDalec]] = {"dalec993": Dalec993, "dalec990": Dalec990}

#: published option names per model -> water-stress strategy
WATER_STRESS: dict[str, dict[str, type[AbstractWaterStress]]] = {
    "dalec993": {"default": LinearWaterStress, "nothing": NoWaterStress},
    "dalec990": {"default": LinearWaterStress, "baseline": NoWaterStress},
}


def get_model(name: str, *, water_stress: str = "default", mode: str = "faithful") -> AbstractDalec:
    """Build a process model from its published name and options.

    Parameters
    ----------
    name : {"dalec993", "dalec990"}
        Model name.
    water_stress : str
        ``"default"`` (linear ramp) or ``"nothing"`` (DALEC993) / ``"baseline"``
        (DALEC990) for no water stress.
    mode : {"faithful", "conserving"}
        Numerics.
    """
    if name not in MODELS:
        raise KeyError(f"unknown process model {name!r}; available: {sorted(MODELS)}")
    options = WATER_STRESS[name]
    if water_stress not in options:
        raise KeyError(
            f"unknown water_stress {water_stress!r} for {name}; available: {sorted(options)}"
        )
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, found {mode!r}")
    return MODELS[name](canopy=AcmCanopy(options[water_stress]()), mode=mode)
