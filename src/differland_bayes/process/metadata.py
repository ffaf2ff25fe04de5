"""Units and long names of the forcing fields and outputs of every process model.

The units follow the ``#:`` comments of the model structures
(:mod:`~differland_bayes.process.dalec993.structures`,
:mod:`~differland_bayes.process.dalec990.structures`); the tests check that every field
of the NamedTuples has an entry here and that the units agree with those comments.
They feed the ``units`` and ``long_name`` attributes of simulated datasets and the axis
labels of plots.
"""

from __future__ import annotations

from .base import AbstractDalec

__all__ = ["FORCING_INFO", "OUTPUT_INFO", "VariableInfo", "forcing_info", "output_info"]

#: ``(units, long_name)`` of one variable
VariableInfo = tuple[str, str]

_FLUX_C = "gC m-2 d-1"
_POOL_C = "gC m-2"
_FLUX_W = "mm d-1"
_POOL_W = "mm"
_DIMLESS = "1"

# Outputs shared by both models (same names, same meaning), in the models' field order.
_CARBON_FLUXES: dict[str, VariableInfo] = {
    "lai": ("m2 m-2", "leaf area index at the start of the step"),
    "gpp": (_FLUX_C, "gross primary production"),
    "ET": (_FLUX_W, "evapotranspiration"),
    "temperate": (_DIMLESS, "temperature-moisture modifier of heterotrophic rates"),
    "respiration_auto": (_FLUX_C, "autotrophic respiration"),
    "leaf_production": (_FLUX_C, "allocation of carbon to foliage"),
    "labile_production": (_FLUX_C, "allocation of carbon to the labile pool"),
    "root_production": (_FLUX_C, "allocation of carbon to roots"),
    "wood_production": (_FLUX_C, "allocation of carbon to wood"),
    "lff": ("d-1", "leaf-fall pulse rate"),
    "lrf": ("d-1", "labile-release pulse rate"),
    "labile_release": (_FLUX_C, "transfer from the labile pool to foliage"),
    "leaf_litter": (_FLUX_C, "transfer from foliage to litter"),
    "wood_litter": (_FLUX_C, "transfer from wood to soil organic matter"),
    "root_litter": (_FLUX_C, "transfer from roots to litter"),
    "respiration_hetero_litter": (_FLUX_C, "heterotrophic respiration of litter"),
    "respiration_hetero_som": (_FLUX_C, "heterotrophic respiration of soil organic matter"),
    "litter_to_som": (_FLUX_C, "decomposition of litter into soil organic matter"),
}
_CARBON_POOLS: dict[str, VariableInfo] = {
    "next_labile_pool": (_POOL_C, "labile carbon at the end of the step"),
    "next_foliar_pool": (_POOL_C, "foliar carbon at the end of the step"),
    "next_root_pool": (_POOL_C, "root carbon at the end of the step"),
    "next_wood_pool": (_POOL_C, "wood carbon at the end of the step"),
    "next_litter_pool": (_POOL_C, "litter carbon at the end of the step"),
    "next_som_pool": (_POOL_C, "soil organic matter carbon at the end of the step"),
}
_BETA: dict[str, VariableInfo] = {"beta": (_DIMLESS, "water-stress factor on GPP")}


def _fire(pool: str, what: str) -> VariableInfo:
    return (_FLUX_C, f"{pool} carbon {what} by fire")


_DALEC993_OUTPUTS: dict[str, VariableInfo] = {
    **_CARBON_FLUXES,
    "runoff": (_FLUX_W, "drainage of the water bucket (negative where ET exceeded supply)"),
    **{
        f"{pool}_fire_combust": _fire(pool, "combusted")
        for pool in ("labile", "foliar", "root", "wood", "litter", "som")
    },
    **{
        f"{pool}_fire_transfer": _fire(pool, "transferred to litter/SOM")
        for pool in ("labile", "foliar", "root", "wood", "litter")
    },
    "total_fire_combust": (_FLUX_C, "fire carbon emissions"),
    "nee": (_FLUX_C, "net ecosystem exchange (positive = source, fire excluded)"),
    "nbe": (_FLUX_C, "net biosphere exchange (NEE plus fire emissions)"),
    **_CARBON_POOLS,
    "next_water_pool": (_POOL_W, "soil water at the end of the step"),
    **_BETA,
    "SIF": ("SIF units", "solar-induced fluorescence from the linear GPP-SIF operator"),
    "violation": (_FLUX_W, "water-balance violation penalty (0.01 x ET deficit)"),
    "vod": (_DIMLESS, "vegetation optical depth operator"),
}

_DALEC990_OUTPUTS: dict[str, VariableInfo] = {
    **_CARBON_FLUXES,
    "q_paw": (_FLUX_W, "drainage of plant-available water out of the system"),
    "q_puw": (_FLUX_W, "drainage of plant-unavailable water"),
    "paw2puw": (_FLUX_W, "transfer from plant-available to plant-unavailable water"),
    "nee": (_FLUX_C, "net ecosystem exchange (positive = source)"),
    **_CARBON_POOLS,
    "next_paw_pool": (_POOL_W, "plant-available water at the end of the step"),
    "next_puw_pool": (_POOL_W, "plant-unavailable water at the end of the step"),
    **_BETA,
    "violation": (_FLUX_W, "water-balance violation penalty (0.01 x ET deficit)"),
}

_COMMON_FORCING: dict[str, VariableInfo] = {
    "t_min": ("degC", "daily minimum air temperature"),
    "t_max": ("degC", "daily maximum air temperature"),
    "swrad": ("MJ m-2 d-1", "shortwave downward radiation"),
    "co2": ("ppm", "atmospheric CO2 mole fraction"),
    "doy": ("d", "day of year"),
    "burned_area": (_DIMLESS, "burned fraction of the area during the step"),
    "vpd": ("hPa", "vapour pressure deficit"),
    "precip": (_FLUX_W, "precipitation"),
    "lat": ("degrees_north", "latitude"),
    "delta_t": ("d", "step length"),
}

_DALEC993_FORCING: dict[str, VariableInfo] = {
    "days": ("d", "days since 2000-01-01 (phenology clock)"),
    **_COMMON_FORCING,
    "t_mean_longterm": ("degC", "long-term mean air temperature"),
    "precip_mean_longterm": (_FLUX_W, "long-term mean precipitation"),
}

_DALEC990_FORCING: dict[str, VariableInfo] = {
    "days": ("d", "days since 2001-01-01 (phenology clock)"),
    **_COMMON_FORCING,
    "t_mean_longterm": ("degC", "mean air temperature over the training period"),
    "precip_mean_longterm": (_FLUX_W, "mean precipitation over the training period"),
    "t_norm": (_DIMLESS, "standardised mean air temperature (network input)"),
    "swrad_norm": (_DIMLESS, "standardised shortwave radiation (network input)"),
    "vpd_norm": (_DIMLESS, "standardised vapour pressure deficit (network input)"),
    "co2_norm": (_DIMLESS, "standardised CO2 (network input)"),
    "end_of_year": (_DIMLESS, "1 on the last day of each year but the last, else 0"),
}

#: ``OUTPUT_INFO[model_name][output] = (units, long_name)``
OUTPUT_INFO: dict[str, dict[str, VariableInfo]] = {
    "dalec993": _DALEC993_OUTPUTS,
    "dalec990": _DALEC990_OUTPUTS,
}

#: ``FORCING_INFO[model_name][forcing_field] = (units, long_name)``
FORCING_INFO: dict[str, dict[str, VariableInfo]] = {
    "dalec993": _DALEC993_FORCING,
    "dalec990": _DALEC990_FORCING,
}


def _model_name(model: AbstractDalec | str) -> str:
    name = model if isinstance(model, str) else model.name
    if name not in OUTPUT_INFO:
        raise KeyError(f"no metadata for process model {name!r}; available: {sorted(OUTPUT_INFO)}")
    return name


def output_info(model: AbstractDalec | str) -> dict[str, VariableInfo]:
    """Units and long names of a model's outputs.

    Parameters
    ----------
    model : AbstractDalec or str
        A process model instance or its name (``"dalec993"``, ``"dalec990"``).

    Returns
    -------
    dict
        ``{output_name: (units, long_name)}`` in the field order of ``model.Outputs``
        (a copy; editing it does not change the module tables).
    """
    return dict(OUTPUT_INFO[_model_name(model)])


def forcing_info(model: AbstractDalec | str) -> dict[str, VariableInfo]:
    """Units and long names of a model's forcing fields.

    Parameters
    ----------
    model : AbstractDalec or str
        A process model instance or its name.

    Returns
    -------
    dict
        ``{forcing_field: (units, long_name)}`` in the field order of ``model.Forcing``.
    """
    return dict(FORCING_INFO[_model_name(model)])
