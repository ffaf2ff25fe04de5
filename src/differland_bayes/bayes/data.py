"""Pack a canonical dataset into the arrays a NumPyro program consumes.

xarray never enters ``jit``: :func:`pack` converts once, on the host, into a
:class:`FitData` pytree of JAX arrays with a leading ``site`` axis, plus the host-side
metadata (site ids, times, feature names and standardisation) needed to go back.

Two situations where model steps and observations do not line up one to one are handled
here:

* ``observation_step="monthly"`` with daily data (DALEC990): the model runs daily; the
  observations are aggregated to calendar months (:func:`~differland_bayes.io.to_monthly`)
  and :class:`Aggregation` tells the likelihood how to average the daily prediction onto
  the same months, over the same days;
* sites with different records (``site_time_valid``): the forcing outside each record is
  filled (:mod:`.records`) and the observations there are masked.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr

from ..dataset import env_matrix, observed_streams
from ..io._canonical import MONTHLY_MIN_FRACTION, SITE_TIME_VALID, infer_step, to_monthly
from .discrepancy import calendar_month
from .operators import aggregation_index, model_streams
from .records import build_site_forcing, record_mask

__all__ = ["OBSERVATION_STEPS", "Aggregation", "FitData", "FitMeta", "StreamData", "pack"]

log = logging.getLogger(__name__)

#: values of ``pack(observation_step=...)`` / ``[data] observation_step``
OBSERVATION_STEPS: tuple[str, ...] = ("model", "monthly")


class StreamData(NamedTuple):
    """One observation stream, ``(site, time)`` arrays (``time`` = observation steps)."""

    value: jnp.ndarray  #: observed values, 0 where not observed (never NaN)
    mask: jnp.ndarray  #: bool, True where observed and used in the likelihood
    unc: jnp.ndarray  #: 1-sd uncertainty, NaN-free; 0 where the data give none


class Aggregation(NamedTuple):
    """How model steps are averaged onto observation steps (daily model, monthly data).

    The prediction of stream ``k`` at observation step ``m`` of site ``s`` is
    ``sum_t w_k[s, t] y[s, t] / sum_t w_k[s, t]`` over the model steps ``t`` with
    ``index[t] == m`` (:func:`~.operators.aggregate`).
    """

    index: jnp.ndarray  #: ``(time_model,)`` int32 observation step of each model step
    weight: dict[str, jnp.ndarray]  #: stream -> ``(site, time_model)`` 1 on averaged steps


class FitData(NamedTuple):
    """Everything a fit needs, as JAX arrays with a leading site axis."""

    forcing: Any  #: ``model.Forcing`` with fields ``(site, time)``
    env: jnp.ndarray  #: standardised predictors ``(site, n_env)``
    streams: dict[str, StreamData]  #: observation streams by name
    has_unc: dict[str, bool]  #: whether each stream came with its own uncertainty
    #: model steps -> observation steps; None when they coincide
    aggregation: Aggregation | None = None
    #: ``(time,)`` int32 calendar month (0..11) of each observation step, for the
    #: seasonal discrepancy (:mod:`.discrepancy`); None where unknown
    month: jnp.ndarray | None = None


@dataclass
class FitMeta:
    """Host-side description of a :class:`FitData` (what its axes mean)."""

    sites: np.ndarray
    time: np.ndarray  #: start of each model step
    features: list[str]
    env_mean: np.ndarray
    env_sd: np.ndarray
    streams: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)  #: one-hot vegetation classes
    observation_step: str = "model"  #: ``"model"`` or ``"monthly"``
    #: start of each observation step (None: the model steps, ``time``)
    obs_time: np.ndarray | None = None
    #: the predictor selection (``[data] predictors``): ``env`` feature names and
    #: ``"vegetation_class"``; empty = every feature and the class columns
    predictors: list[str] = field(default_factory=list)


def _standardise(x: np.ndarray, mean: np.ndarray | None, sd: np.ndarray | None):
    if mean is None:
        mean = x.mean(axis=0)
        sd = x.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    return (x - mean) / sd, mean, sd


def _values(ds: xr.Dataset, name: str, dtype: Any = float) -> np.ndarray:
    return np.asarray(ds[name].transpose("site", "time").values, dtype)


def _daily_mask(ds: xr.Dataset, stream: str, valid: np.ndarray) -> np.ndarray:
    """Days whose observation of ``stream`` may enter a monthly mean (as ``to_monthly``)."""
    mask = np.isfinite(_values(ds, stream)) & valid
    if f"{stream}_mask" in ds:
        mask &= _values(ds, f"{stream}_mask", bool)
    return mask


def _monthly_observations(
    ds: xr.Dataset, streams: list[str], min_fraction: float
) -> tuple[xr.Dataset, Aggregation | None]:
    """Return the streams of a daily dataset as calendar-month means, and how to aggregate."""
    time = pd.DatetimeIndex(ds["time"].values)
    step = infer_step(time, what="time")
    if step == "monthly":
        log.info("data: observation_step 'monthly' on monthly data: nothing to aggregate")
        return ds, None
    valid = record_mask(ds)
    keep = [v for s in streams for v in (s, f"{s}_mask", f"{s}_unc") if v in ds]
    keep += [v for v in ("split_time", SITE_TIME_VALID) if v in ds]
    monthly = to_monthly(ds[keep], min_fraction=min_fraction)
    index = aggregation_index(time, monthly["time"].values)
    weight = {s: jnp.asarray(_daily_mask(ds, s, valid).astype(float)) for s in streams}
    log.info(
        "data: %d daily steps; observations aggregated to %d calendar months (a month "
        "counts when >= %g of its days are observed); predictions averaged over the same days",
        len(time), monthly.sizes["time"], min_fraction,
    )  # fmt: skip
    return monthly, Aggregation(index=jnp.asarray(index), weight=weight)


def pack(
    ds: xr.Dataset,
    model: Any,
    *,
    streams: list[str] | None = None,
    split: int | None = 1,
    env_spec: FitMeta | None = None,
    spinup_steps: int = 0,
    observation_step: str = "model",
    min_fraction: float = MONTHLY_MIN_FRACTION,
    predictors: Sequence[str] | None = None,
) -> tuple[FitData, FitMeta]:
    """Convert a canonical dataset for ``model`` into :class:`FitData`.

    Parameters
    ----------
    ds : xarray.Dataset
        Canonical dataset (``docs/data-format.md``) on the model's own time step. Sites
        with different records (``site_time_valid``) are accepted: outside a site's
        record its forcing is filled with its own calendar climatology
        (:func:`~.records.build_site_forcing`) and its observations are masked.
    model : AbstractDalec
        The process model (decides the forcing fields and which streams it predicts).
    streams : list of str, optional
        Streams to use; default: every stream present that the model can predict.
    split : int or None
        Keep observations only where ``split_time == split`` (1 = training); None keeps
        all observed values.
    env_spec : FitMeta, optional
        The metadata of a previous :func:`pack` (the training sites): its predictor
        selection, vegetation classes and predictor standardisation are reused, so that
        new sites are encoded exactly like the sites a fit has seen. Default: computed
        from ``ds``.
    spinup_steps : int
        Number of initial model steps of the dataset's time axis (the same for every
        site) whose observations are excluded; with monthly observations, every month
        that overlaps them. Steps before a site's own record are excluded anyway (no
        observations there): they are extra, climatologically forced spin-up.
    observation_step : {"model", "monthly"}
        ``"model"``: observations on the model steps. ``"monthly"``: the observations of
        a daily dataset are compared as calendar-month means (``io.to_monthly``: a month
        counts when at least ``min_fraction`` of its days are observed; uncertainty of a
        mean of ``n`` days ``sqrt(mean(u**2) / n)``), and the daily prediction is averaged
        over the same days (:class:`Aggregation`). On monthly data it changes nothing.
    min_fraction : float
        With ``observation_step="monthly"``: share of a month's calendar days that must
        be observed for the month to count (default 0.5).
    predictors : sequence of str, optional
        The network's predictors (``[data] predictors``): names of ``env`` features (in
        the order given) and ``"vegetation_class"`` for the one-hot class columns (last);
        None or empty: every feature, then the class columns. Ignored with ``env_spec``
        (whose selection is used).

    Raises
    ------
    ValueError
        If a requested stream is absent or not predicted by the model, no observation
        is left, ``observation_step`` is unknown, a selected predictor is absent, or a
        site's forcing cannot be filled outside its record.
    """
    if observation_step not in OBSERVATION_STEPS:
        raise ValueError(
            f"observation_step: expected one of {list(OBSERVATION_STEPS)}, "
            f"found {observation_step!r}"
        )
    available = [s for s in observed_streams(ds) if s in model_streams(model)]
    if streams is None:
        streams = available
    bad = [s for s in streams if s not in available]
    if bad:
        raise ValueError(
            f"streams {bad}: expected streams present in the dataset and predicted by "
            f"{model.name} ({available}), found {observed_streams(ds)} in the dataset"
        )
    forcing = build_site_forcing(ds, model)
    classes = env_spec.classes if env_spec is not None else None
    if env_spec is not None:
        predictors = env_spec.predictors
    predictors = list(predictors or [])
    x, names = env_matrix(ds, classes=classes, predictors=predictors)
    if x.shape[1] == 0:
        raise ValueError("env: expected at least one environment predictor, found none")
    if env_spec is not None and names != env_spec.features:
        raise ValueError(
            f"env: expected the predictors of the fit {env_spec.features}, found {names}"
        )
    mean, sd = (env_spec.env_mean, env_spec.env_sd) if env_spec is not None else (None, None)
    x_std, mean, sd = _standardise(x, mean, sd)

    obs, aggregation = ds, None
    if observation_step == "monthly":
        obs, aggregation = _monthly_observations(ds, list(streams), min_fraction)
    valid = record_mask(obs)
    spinup_cols = np.arange(min(spinup_steps, obs.sizes["time"]))
    if aggregation is not None:
        idx = np.asarray(aggregation.index)[:spinup_steps]
        spinup_cols = np.unique(idx[idx < obs.sizes["time"]])

    packed: dict[str, StreamData] = {}
    has_unc: dict[str, bool] = {}
    n_obs = 0
    for s in streams:
        value = _values(obs, s)
        mask = np.isfinite(value) & valid
        if f"{s}_mask" in obs:
            mask &= _values(obs, f"{s}_mask", bool)
        if split is not None and "split_time" in obs:
            mask &= _values(obs, "split_time", None) == split
        mask[:, spinup_cols] = False
        unc = np.zeros_like(value)
        has_unc[s] = f"{s}_unc" in obs
        if has_unc[s]:
            unc = _values(obs, f"{s}_unc")
            unc = np.where(np.isfinite(unc) & (unc > 0), unc, 0.0)
        n_obs += int(mask.sum())
        packed[s] = StreamData(
            value=jnp.asarray(np.where(mask, value, 0.0)),
            mask=jnp.asarray(mask),
            unc=jnp.asarray(unc),
        )
    if n_obs == 0:
        raise ValueError(
            f"streams {streams}: no observation left after masks, split={split}, "
            f"spinup_steps={spinup_steps} and observation_step={observation_step!r}; "
            "expected at least one"
        )
    data = FitData(
        forcing=forcing,
        env=jnp.asarray(x_std),
        streams=packed,
        has_unc=has_unc,
        aggregation=aggregation,
        month=jnp.asarray(calendar_month(obs["time"].values)),
    )
    meta = FitMeta(
        sites=np.asarray(ds["site"].values),
        time=np.asarray(ds["time"].values),
        features=names,
        env_mean=mean,
        env_sd=sd,
        streams=list(streams),
        classes=[n.split("=", 1)[1] for n in names if n.startswith("vegetation_class=")],
        observation_step=observation_step,
        obs_time=None if aggregation is None else np.asarray(obs["time"].values),
        predictors=predictors,
    )
    return data, meta
