"""Labelling of a synthetic world's arrays as a canonical dataset (units, long names).

Variables with a ``site`` dimension are built for every block; the variables shared by
all sites (time, features, parameters, the relationship) only with the first block, so
that the Zarr writer can append blocks along ``site``. Global attributes go with every
block (appending replaces them).
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import numpy as np
import xarray as xr

from .._version import __version__
from ..dataset import CONVENTIONS, STREAMS
from ..simulation import water_stress_option
from .climate import FEATURES
from .observations import NoiseSpec
from .plan import FORCING_ATTRS, Plan

__all__ = ["FEATURE_NAMES", "GENERATOR_VERSION", "PARAMETER_DIM", "encoding", "label"]

GENERATOR_VERSION = "1.0"  #: changes whenever the same arguments give different values
FEATURE_NAMES = tuple(FEATURES)
PARAMETER_DIM = "parameter"


def _noise_text(noise: Mapping[str, NoiseSpec]) -> str:
    return "; ".join(
        f"{s}: sd = {n.relative:g} |{s}| + {n.floor:g} {STREAMS[s].units}" for s, n in noise.items()
    )


def _globals(plan: Plan) -> tuple[dict, dict]:
    """Return the coordinates and variables shared by all sites."""
    table = plan.model.table
    axis = plan.axis
    coords = {
        "time": ("time", axis.time, {"long_name": "start of the step"}),
        "feature": ("feature", np.array(FEATURE_NAMES), {"long_name": "environment predictor"}),
        "feature_units": (
            "feature",
            np.array([FEATURES[f][0] for f in FEATURE_NAMES]),
            {"long_name": "units of each predictor"},
        ),
        PARAMETER_DIM: (PARAMETER_DIM, np.array(table.names), {"long_name": "parameter"}),
        "parameter_units": (PARAMETER_DIM, np.array(table.units), {"long_name": "units"}),
        "parameter_lower": (
            PARAMETER_DIM,
            table.lower,
            {"long_name": "lower bound", "units": "see parameter_units"},
        ),
        "parameter_upper": (
            PARAMETER_DIM,
            table.upper,
            {"long_name": "upper bound", "units": "see parameter_units"},
        ),
        "parameter_varies": (
            PARAMETER_DIM,
            plan.varying,
            {"long_name": "True where the parameter follows the environment relationship"},
        ),
    }
    baseline_text = (
        "z of the parameters that do not follow the relationship (the default site's "
        "values, differland_bayes.defaults.default_theta)"
    )
    if plan.other_parameters == "random":
        baseline_text += f", before independent N(0, {plan.other_sd:g}^2) site deviations"
    data = {
        "baseline_z": (PARAMETER_DIM, plan.baseline_z, {"units": "1", "long_name": baseline_text}),
    }
    rel = plan.relationship.to_dataset()
    return coords, {**data, **{k: rel[k] for k in rel.data_vars}}


def _attributes(plan: Plan) -> dict[str, str | int]:
    """Global attributes: provenance and a readable account of the truth."""
    axis = plan.axis
    varied = [n for n, v in zip(plan.model.table.names, plan.varying, strict=True) if v]
    source = (
        "generated (seasonal cycles by latitude, weather noise, global CO2 record)"
        if plan.source is None
        else f"resampled by calendar year from {plan.source.description}; CO2 synthetic"
    )
    attrs = {
        "conventions": CONVENTIONS,
        "title": (
            f"synthetic world: {plan.n_sites} sites x {len(axis)} {axis.step} steps, "
            f"{plan.model.name}, seed {plan.seed}"
        ),
        "source": "differland_bayes.synthetic.synthesize",
        "step": axis.step,
        "generator": "differland_bayes.synthetic",
        "generator_version": GENERATOR_VERSION,
        "differland_bayes_version": __version__,
        "jax_version": jax.__version__,
        "seed": plan.seed,
        "model": plan.model.name,
        "mode": plan.model.mode,
        "water_stress": water_stress_option(plan.model),
        "n_sites": plan.n_sites,
        "years": int(axis.year[-1] - axis.year[0] + 1),
        "start_year": int(axis.year[0]),
        "forcing": source,
        "streams": " ".join(plan.streams),
        "relationship": plan.relationship.describe(),
        "varying_parameters": " ".join(varied),
        "other_parameters": plan.other_parameters,
        "noise": _noise_text(plan.noise),
        "gap_fraction": "; ".join(f"{s}: {g:g}" for s, g in plan.gaps.items()),
        "train_years": plan.train_years,
        "site_split": (
            f"train {plan.fractions[0]:g}, validation {plan.fractions[1]:g}, test "
            f"{plan.fractions[2]:g} (seeded permutation)"
        ),
        "comment": (
            "Known truth: true_parameters = table.to_physical(true_z); true_z = relationship "
            "(relationship_* variables, attribute 'relationship') evaluated on env and "
            "vegetation_class + true_z_residual for the parameters with parameter_varies, "
            "baseline_z + true_z_residual for the others; true_<stream> are the noise-free "
            "simulated series, <stream> = true_<stream> + <stream>_unc * N(0, 1) where "
            "<stream>_mask."
        ),
    }
    return attrs


def label(plan: Plan, arrays: dict[str, np.ndarray], start: int, with_globals: bool) -> xr.Dataset:
    """Label the arrays of sites ``start, start + 1, ...`` as a canonical dataset."""
    n = len(arrays["lat"])
    st, sp = ("site", "time"), ("site", PARAMETER_DIM)
    data: dict[str, tuple] = {}
    for k, (units, long_name) in FORCING_ATTRS.items():
        data[k] = (st, arrays[k], {"units": units, "long_name": long_name})
    for s in plan.streams:
        units, long_name = STREAMS[s]
        data[s] = (st, arrays[s], {"units": units, "long_name": f"{long_name} (synthetic)"})
        data[f"{s}_mask"] = (
            st,
            arrays[f"{s}_mask"],
            {"units": "1", "long_name": f"True where {s} was observed"},
        )
        data[f"{s}_unc"] = (
            st,
            arrays[f"{s}_unc"],
            {"units": units, "long_name": f"standard deviation of the noise added to {s}"},
        )
        if plan.include_truth:
            data[f"true_{s}"] = (
                st,
                arrays[f"true_{s}"],
                {"units": units, "long_name": f"noise-free simulated {long_name}"},
            )
    data["env"] = (
        ("site", "feature"),
        arrays["env"],
        {"units": "see feature_units", "long_name": "environment predictors"},
    )
    data["split_time"] = (
        st,
        arrays["split_time"],
        {
            "units": "1",
            "long_name": "0 = not used, 1 = training, 2 = validation",
            "flag_values": "0 1 2",
            "flag_meanings": "unused training validation",
        },
    )
    data["split_site"] = (
        "site",
        plan.labels[start : start + n],
        {"units": "1", "long_name": "train, validation or test: which sites a fit may see"},
    )
    data["true_z"] = (
        sp,
        arrays["true_z"],
        {"units": "1", "long_name": "true unconstrained parameters (bounded transform input)"},
    )
    data["true_parameters"] = (
        sp,
        arrays["true_parameters"],
        {
            "units": "see parameter_units",
            "long_name": "true physical parameters and initial pools, to_physical(true_z)",
        },
    )
    data["true_z_residual"] = (
        sp,
        arrays["true_z_residual"],
        {"units": "1", "long_name": "site residual part of true_z (0 where none)"},
    )
    if "forcing_source_site" in arrays:
        data["forcing_source_site"] = (
            "site",
            arrays["forcing_source_site"],
            {"units": "1", "long_name": "source site the forcing years were drawn from"},
        )
    coords = {
        "site": ("site", plan.site_ids(start, start + n), {"long_name": "site identifier"}),
        "lat": ("site", arrays["lat"], {"units": "degrees_north", "long_name": "latitude"}),
        "lon": ("site", arrays["lon"], {"units": "degrees_east", "long_name": "longitude"}),
        "vegetation_class": (
            "site",
            arrays["vegetation_class"],
            {"long_name": "IGBP vegetation class"},
        ),
    }
    if with_globals:
        g_coords, g_data = _globals(plan)
        coords.update(g_coords)
        data.update(g_data)
    return xr.Dataset(data, coords=coords, attrs=_attributes(plan))


def encoding(ds: xr.Dataset, block: int) -> dict:
    """Return the Zarr chunks: one block of sites, everything else whole."""
    return {
        name: {"chunks": (block, *ds[name].shape[1:])}
        for name in ds.variables
        if ds[name].dims[:1] == ("site",)
    }
