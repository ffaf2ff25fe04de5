"""String names of the process models and their water-stress options (CLI and configs only).

Library code passes model instances; names are for the edges (command line, TOML).

Hybrid (neural-network) options of spec §1.4 are listed in :data:`NN_OPTIONS`, separately
from :data:`WATER_STRESS` because they need a PRNG key (and ``nn_whole`` a forcing series
for its standardisation constants):

* ``"nn_paw"``: :class:`~.components.neural.NeuralWaterStress` inside the ACM canopy
  (both models);
* ``"nn_whole"``: :class:`~.components.neural.NeuralCanopy` replaces the canopy (both
  models), built with :meth:`~.components.neural.NeuralCanopy.from_forcing`.
"""

from __future__ import annotations

from typing import Any

from .base import MODES, AbstractDalec
from .components.canopy import AbstractCanopy, AcmCanopy
from .components.neural import NeuralCanopy, NeuralWaterStress
from .components.water_stress import AbstractWaterStress, LinearWaterStress, NoWaterStress
from .dalec990 import Dalec990
from .dalec993 import Dalec993

__all__ = ["MODELS", "NN_OPTIONS", "WATER_STRESS", "get_model"]

MODELS: dict[str, type[AbstractDalec]] = {"dalec993": Dalec993, "dalec990": Dalec990}

#: published option names per model -> water-stress strategy
WATER_STRESS: dict[str, dict[str, type[AbstractWaterStress]]] = {
    "dalec993": {"default": LinearWaterStress, "nothing": NoWaterStress},
    "dalec990": {"default": LinearWaterStress, "baseline": NoWaterStress},
}

#: hybrid option names (every model) -> component they build (spec §1.4)
NN_OPTIONS: dict[str, type] = {"nn_paw": NeuralWaterStress, "nn_whole": NeuralCanopy}


def get_model(
    name: str,
    *,
    water_stress: str = "default",
    mode: str = "faithful",
    key: Any = None,
    forcing: Any = None,
) -> AbstractDalec:
    """Build a process model from its published name and options.

    Parameters
    ----------
    name : {"dalec993", "dalec990"}
        Model name.
    water_stress : str
        ``"default"`` (linear ramp) or ``"nothing"`` (DALEC993) / ``"baseline"``
        (DALEC990) for no water stress; ``"nn_paw"`` (network beta) or ``"nn_whole"``
        (network GPP and ET, replacing the ACM canopy) for the hybrid options.
    mode : {"faithful", "conserving"}
        Numerics.
    key : jax.Array, optional
        PRNG key of the initial network weights; required for the ``nn_*`` options.
    forcing : NamedTuple, optional
        A forcing series of the model (``Forcing``, any leading shape) from which
        ``nn_whole`` takes its standardisation constants; required for ``nn_whole``.

    Raises
    ------
    KeyError
        For an unknown model or option.
    ValueError
        For an unknown mode, or a missing ``key`` / ``forcing`` of an ``nn_*`` option.
    """
    if name not in MODELS:
        raise KeyError(f"unknown process model {name!r}; available: {sorted(MODELS)}")
    options = WATER_STRESS[name]
    if water_stress not in options and water_stress not in NN_OPTIONS:
        raise KeyError(
            f"unknown water_stress {water_stress!r} for {name}; "
            f"available: {sorted(options) + sorted(NN_OPTIONS)}"
        )
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, found {mode!r}")
    canopy: AbstractCanopy
    if water_stress in NN_OPTIONS:
        if key is None:
            raise ValueError(
                f"water_stress={water_stress!r} needs key=jax.random.key(...) "
                "for its network weights"
            )
        if water_stress == "nn_paw":
            canopy = AcmCanopy(NeuralWaterStress(key=key))
        else:
            if forcing is None:
                raise ValueError(
                    "water_stress='nn_whole' needs forcing=<the model's Forcing> for its "
                    "standardisation constants"
                )
            canopy = NeuralCanopy.from_forcing(forcing, key=key)
    else:
        canopy = AcmCanopy(options[water_stress]())
    return MODELS[name](canopy=canopy, mode=mode)
