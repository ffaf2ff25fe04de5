"""Helpers to load reference trajectory files and run our models on them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from differland_bayes.process import get_model, simulate


@dataclass
class ReferenceGroup:
    """Cases of one reference file that share a model configuration."""

    path: Path
    model_name: str
    water_stress: str
    cases: np.ndarray  # case indices within the file
    theta: np.ndarray  # (n, P) physical parameters then initial pools
    z: np.ndarray  # (n, P) unconstrained values as stored
    forcing: np.ndarray  # (n, T, F)
    outputs: np.ndarray  # (n, T, O)
    output_names: list[str]
    draw_kind: np.ndarray  # (n,)

    @property
    def model(self):
        return get_model(self.model_name, water_stress=self.water_stress)


def _model_name(ds: xr.Dataset) -> str:
    if "phenology" in ds or "phenology_parameter" in ds.dims:
        return "dalec993"
    return "dalec990"


def _water_stress(ds: xr.Dataset, n: int) -> np.ndarray:
    if "water_stress" in ds.coords or "water_stress" in ds:
        return np.asarray(ds["water_stress"].values).astype(str)
    found = re.search(r"water stress '([a-z_]+)'", ds.attrs.get("title", ""))
    return np.full(n, found.group(1) if found else "default")


def load_reference_groups(path: Path) -> list[ReferenceGroup]:
    """Split one reference file into groups of cases with the same model configuration."""
    with xr.open_dataset(path) as ds:
        ds = ds.load()
    name = _model_name(ds)
    n = ds.sizes["case"]
    if name == "dalec993":
        theta = np.concatenate(
            [ds.parameters.values, ds.phenology.values, ds.initial_pools.values], axis=1
        )
        z = np.concatenate(
            [ds.z_parameters.values, ds.z_phenology.values, ds.z_initial_pools.values], axis=1
        )
    else:
        theta = np.concatenate([ds.parameters.values, ds.initial_pools.values], axis=1)
        z = np.concatenate([ds.z_parameters.values, ds.z_initial_pools.values], axis=1)
    ws = _water_stress(ds, n)
    kinds = np.asarray(ds["draw_kind"].values).astype(str) if "draw_kind" in ds else ws.copy()
    groups = []
    for w in dict.fromkeys(ws):
        idx = np.flatnonzero(ws == w)
        groups.append(
            ReferenceGroup(
                path=path,
                model_name=name,
                water_stress=str(w),
                cases=idx,
                theta=theta[idx],
                z=z[idx],
                forcing=ds.forcing.values[idx],
                outputs=ds.outputs.values[idx],
                output_names=[str(o) for o in ds.output.values],
                draw_kind=kinds[idx],
            )
        )
    return groups


def run_group(group: ReferenceGroup, model=None, dtype=jnp.float64):
    """Simulate every case of a group (vmapped); returns the model's Outputs NamedTuple."""
    model = model or group.model

    def one(theta, met):
        params, pools0 = model.split(theta)
        return simulate(model, params, pools0, model.forcing_from_matrix(met))

    return jax.jit(jax.vmap(one))(
        jnp.asarray(group.theta, dtype), jnp.asarray(group.forcing, dtype)
    )


def reference_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.nc"))
