"""Parameter table of DALEC990 (spec §2.4): 30 parameters and 8 initial pools.

DifferLand v1.0 calibrates these per site with no network. Rows that DALEC990 shares with
DALEC993 (same name, bounds, units, meaning) are taken from the DALEC993 table rather than
typed again; only the differences are written here. ``Bday`` and ``Fday`` are ordinary
entries of the parameter vector (no separate phenology head), so they belong to the
``process`` group; the fire parameters exist but are inert (no fire at sites).
"""

from __future__ import annotations

from dataclasses import replace

from ...params import ParamInfo, ParamTable
from ..dalec993.table import DALEC993_TABLE

__all__ = ["DALEC990_TABLE"]

_IP = "initial_pool"


def _shared(name: str, **changes: str) -> ParamInfo:
    """Return the DALEC993 row ``name``, optionally with another group or description."""
    return replace(DALEC993_TABLE[name], **changes)


_INERT = " (inert: no fire at sites)"

# fmt: off
DALEC990_TABLE = ParamTable(
    [
        *(_shared(n) for n in (
            "decomposition_rate", "f_gpp", "f_fol", "f_root", "leaf_lifespan", "tor_wood",
            "tor_root", "tor_litter", "tor_som", "Q10", "canopy_efficiency",
        )),
        _shared("Bday", group="process"),
        _shared("flab"),
        _shared("clab_release_period"),
        _shared("Fday", group="process"),
        _shared("leaf_fall_period"),
        _shared("LCMA"),
        _shared("uWUE"),
        ParamInfo("PAW_Qmax", 1.0, 1e5, "mm", "focal point of plant-available water drainage"),
        _shared("field_capacity", description="field capacity of plant-available water for water stress"),
        _shared("wilting_point_frac"),
        *(_shared(n, description=DALEC993_TABLE[n].description + _INERT)
          for n in ("foliar_cf", "ligneous_cf", "dom_cf", "resilience")),
        _shared("lab_lifespan"),
        _shared("moisture_factor"),
        ParamInfo("h2o_xfer", 0.01, 1.0, "1", "fraction of PAW drainage transferred to plant-unavailable water"),
        ParamInfo("PUW_Qmax", 1.0, 1e5, "mm", "focal point of plant-unavailable water drainage"),
        _shared("boese_r"),
        *(_shared(n) for n in ("Clab", "Cfol", "Croot", "Cwood", "Clitter", "Csom")),
        ParamInfo("initial_PAW", 1.0, 1e4, "mm", "initial plant-available water", _IP),
        ParamInfo("initial_PUW", 1.0, 1e4, "mm", "initial plant-unavailable water", _IP),
    ]
)
# fmt: on
