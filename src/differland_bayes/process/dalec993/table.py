"""Parameter table of DALEC993 (spec §2.1-2.3).

31 process parameters, 2 phenology parameters and 7 initial pools, in the order of the
published network heads.
"""

from __future__ import annotations

from ...params import ParamInfo, ParamTable

__all__ = ["DALEC993_TABLE"]

_P = "process"
_PH = "phenology"
_IP = "initial_pool"

# fmt: off
DALEC993_TABLE = ParamTable(
    [
        ParamInfo(
            "decomposition_rate",
            1e-5,
            0.01,
            "d-1",
            "litter to SOM decomposition rate (times the rate modifier)",
        ),
        ParamInfo("f_gpp", 0.2, 0.8, "1", "fraction of GPP respired autotrophically"),
        ParamInfo("f_fol", 0.01, 0.5, "1", "fraction of NPP allocated to foliage"),
        ParamInfo(
            "f_root",
            0.01,
            1.0,
            "1",
            "fraction of NPP left after foliage and labile allocated to roots",
        ),
        ParamInfo(
            "leaf_lifespan", 1.001, 8.0, "yr", "leaf lifespan (1/L of foliage shed per year)"
        ),
        ParamInfo("tor_wood", 2.5e-5, 1e-3, "d-1", "wood turnover rate"),
        ParamInfo("tor_root", 1e-4, 0.01, "d-1", "root turnover rate"),
        ParamInfo(
            "tor_litter",
            1e-4,
            0.01,
            "d-1",
            "litter heterotrophic respiration rate (times the rate modifier)",
        ),
        ParamInfo(
            "tor_som",
            1e-7,
            1e-3,
            "d-1",
            "SOM heterotrophic respiration rate (times the rate modifier)",
        ),
        ParamInfo(
            "Q10",
            0.018,
            0.08,
            "degC-1",
            "exponential temperature sensitivity of decomposition (Q10 = exp(10 Q10))",
        ),
        ParamInfo(
            "canopy_efficiency",
            5.0,
            50.0,
            "gC m-2 d-1",
            "ACM canopy efficiency (nitrogen-use efficiency times foliar N)",
        ),
        ParamInfo(
            "flab",
            0.01,
            0.5,
            "1",
            "fraction of NPP left after foliage allocated to the labile pool",
        ),
        ParamInfo(
            "clab_release_period",
            30.4375,
            100.0,
            "d",
            "width of the labile-release (leaf-onset) pulse",
        ),
        ParamInfo("leaf_fall_period", 30.4375, 150.0, "d", "width of the leaf-fall pulse"),
        ParamInfo("LCMA", 5.0, 200.0, "gC m-2", "leaf carbon mass per leaf area"),
        ParamInfo(
            "IWUE",
            10.0,
            50.0,
            "gC hPa kgH2O-1",
            "intrinsic water-use efficiency (unused by the published model)",
        ),
        ParamInfo("runoff_focal_point", 1.0, 1e5, "mm", "focal point Q of bucket drainage"),
        ParamInfo(
            "field_capacity", 1.0, 1e4, "mm", "field capacity of the water bucket for water stress"
        ),
        ParamInfo("foliar_cf", 0.01, 1.0, "1", "combustion completeness of foliage"),
        ParamInfo(
            "ligneous_cf", 0.01, 1.0, "1", "combustion completeness of labile, root and wood"
        ),
        ParamInfo("dom_cf", 0.01, 1.0, "1", "combustion completeness of soil organic matter"),
        ParamInfo(
            "resilience", 0.01, 1.0, "1", "fraction of burned, non-combusted biomass that survives"
        ),
        ParamInfo(
            "lab_lifespan", 1.001, 8.0, "yr", "labile lifespan (1/L of labile released per year)"
        ),
        ParamInfo(
            "moisture_factor",
            0.01,
            1.0,
            "1",
            "sensitivity of the rate modifier to the precipitation anomaly",
        ),
        ParamInfo(
            "uWUE",
            0.5,
            30.0,
            "gC hPa0.5 kgH2O-1",
            "underlying water-use efficiency of transpiration",
        ),
        ParamInfo(
            "boese_r", 0.01, 0.3, "mm MJ-1 m2", "radiation coefficient of evapotranspiration"
        ),
        ParamInfo(
            "wilting_point_frac", 0.01, 0.5, "1", "wilting point as a fraction of field capacity"
        ),
        ParamInfo(
            "sif_alpha", 3.0, 35.0, "gC m-2 d-1 per SIF unit", "slope of GPP = alpha SIF + beta"
        ),
        ParamInfo(
            "sif_beta_plus_three",
            1.0,
            9.0,
            "gC m-2 d-1",
            "offset beta of GPP = alpha SIF + beta, plus 3",
        ),
        ParamInfo("p_fol", 1e-4, 0.01, "m2 gC-1", "VOD per unit foliar carbon"),
        ParamInfo("p_wood", 1e-6, 8e-5, "m2 gC-1", "VOD per unit wood carbon"),
        ParamInfo(
            "Bday", 365.25, 1461.0, "d", "phase of the labile-release (leaf-onset) pulse", _PH,
            period=365.25,
        ),
        ParamInfo("Fday", 365.25, 1461.0, "d", "phase of the leaf-fall pulse", _PH, period=365.25),
        ParamInfo("Clab", 1.0, 2000.0, "gC m-2", "initial labile carbon", _IP),
        ParamInfo("Cfol", 1.0, 2000.0, "gC m-2", "initial foliar carbon", _IP),
        ParamInfo("Croot", 1.0, 2000.0, "gC m-2", "initial root carbon", _IP),
        ParamInfo("Cwood", 1.0, 1e5, "gC m-2", "initial wood carbon", _IP),
        ParamInfo("Clitter", 1.0, 2000.0, "gC m-2", "initial litter carbon", _IP),
        ParamInfo("Csom", 1.0, 2e5, "gC m-2", "initial soil organic matter carbon", _IP),
        ParamInfo("initial_water", 1.0, 1e4, "mm", "initial soil water", _IP),
    ]
)
# fmt: on
