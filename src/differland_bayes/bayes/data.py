"""Pack a canonical dataset into the arrays a NumPyro program consumes.

xarray never enters ``jit``: :func:`pack` converts once, on the host, into a
:class:`FitData` pytree of JAX arrays with a leading ``site`` axis, plus the host-side
metadata (site ids, times, feature names and standardisation) needed to go back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np
import xarray as xr

from ..dataset import env_matrix, observed_streams
from ..forcing import build_forcing
from .operators import model_streams

__all__ = ["FitData", "FitMeta", "StreamData", "pack"]


class StreamData(NamedTuple):
    """One observation stream, ``(site, time)`` arrays."""

    value: jnp.ndarray  #: observed values, 0 where not observed (never NaN)
    mask: jnp.ndarray  #: bool, True where observed and used in the likelihood
    unc: jnp.ndarray  #: 1-sd uncertainty, NaN-free; 0 where the data give none


class FitData(NamedTuple):
    """Everything a fit needs, as JAX arrays with a leading site axis."""

    forcing: Any  #: ``model.Forcing`` with fields ``(site, time)``
    env: jnp.ndarray  #: standardised predictors ``(site, n_env)``
    streams: dict[str, StreamData]  #: observation streams by name
    has_unc: dict[str, bool]  #: whether each stream came with its own uncertainty


@dataclass
class FitMeta:
    """Host-side description of a :class:`FitData` (what its axes mean)."""

    sites: np.ndarray
    time: np.ndarray
    features: list[str]
    env_mean: np.ndarray
    env_sd: np.ndarray
    streams: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)  #: one-hot vegetation classes


def _standardise(x: np.ndarray, mean: np.ndarray | None, sd: np.ndarray | None):
    if mean is None:
        mean = x.mean(axis=0)
        sd = x.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    return (x - mean) / sd, mean, sd


def pack(
    ds: xr.Dataset,
    model: Any,
    *,
    streams: list[str] | None = None,
    split: int | None = 1,
    env_spec: FitMeta | None = None,
    spinup_steps: int = 0,
) -> tuple[FitData, FitMeta]:
    """Convert a canonical dataset for ``model`` into :class:`FitData`.

    Parameters
    ----------
    ds : xarray.Dataset
        Canonical dataset (``docs/data-format.md``) on the model's own time step.
    model : AbstractDalec
        The process model (decides the forcing fields and which streams it predicts).
    streams : list of str, optional
        Streams to use; default: every stream present that the model can predict.
    split : int or None
        Keep observations only where ``split_time == split`` (1 = training); None keeps
        all observed values.
    env_spec : FitMeta, optional
        The metadata of a previous :func:`pack` (the training sites): its vegetation
        classes and predictor standardisation are reused, so that new sites are encoded
        exactly like the sites a fit has seen. Default: computed from ``ds``.
    spinup_steps : int
        Number of initial model steps whose observations are excluded.

    Raises
    ------
    ValueError
        If a requested stream is absent or not predicted by the model, or no observation
        is left.
    """
    available = [s for s in observed_streams(ds) if s in model_streams(model)]
    if streams is None:
        streams = available
    bad = [s for s in streams if s not in available]
    if bad:
        raise ValueError(
            f"streams {bad}: expected streams present in the dataset and predicted by "
            f"{model.name} ({available}), found {observed_streams(ds)} in the dataset"
        )
    forcing = build_forcing(ds, model)
    classes = env_spec.classes if env_spec is not None else None
    x, names = env_matrix(ds, classes=classes)
    if x.shape[1] == 0:
        raise ValueError("env: expected at least one environment predictor, found none")
    if env_spec is not None and names != env_spec.features:
        raise ValueError(
            f"env: expected the predictors of the fit {env_spec.features}, found {names}"
        )
    mean, sd = (env_spec.env_mean, env_spec.env_sd) if env_spec is not None else (None, None)
    x_std, mean, sd = _standardise(x, mean, sd)

    packed: dict[str, StreamData] = {}
    has_unc: dict[str, bool] = {}
    n_obs = 0
    for s in streams:
        value = np.asarray(ds[s].transpose("site", "time").values, float)
        mask = np.isfinite(value)
        if f"{s}_mask" in ds:
            mask &= np.asarray(ds[f"{s}_mask"].transpose("site", "time").values, bool)
        if split is not None and "split_time" in ds:
            mask &= np.asarray(ds["split_time"].transpose("site", "time").values) == split
        mask[:, :spinup_steps] = False
        unc = np.zeros_like(value)
        has_unc[s] = f"{s}_unc" in ds
        if has_unc[s]:
            unc = np.asarray(ds[f"{s}_unc"].transpose("site", "time").values, float)
            unc = np.where(np.isfinite(unc) & (unc > 0), unc, 0.0)
        n_obs += int(mask.sum())
        packed[s] = StreamData(
            value=jnp.asarray(np.where(mask, value, 0.0)),
            mask=jnp.asarray(mask),
            unc=jnp.asarray(unc),
        )
    if n_obs == 0:
        raise ValueError(f"streams {streams}: no observation left after masks and split={split}")
    data = FitData(forcing=forcing, env=jnp.asarray(x_std), streams=packed, has_unc=has_unc)
    meta = FitMeta(
        sites=np.asarray(ds["site"].values),
        time=np.asarray(ds["time"].values),
        features=names,
        env_mean=mean,
        env_sd=sd,
        streams=list(streams),
        classes=[n.split("=", 1)[1] for n in names if n.startswith("vegetation_class=")],
    )
    return data, meta
