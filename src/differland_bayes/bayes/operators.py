"""Observation operators: process-model outputs to observable streams (pure JAX).

An operator maps the model's named outputs (``model.Outputs``, fields shaped
``(..., time_model)``) to the value of an observation stream on the model's time steps;
:func:`aggregate` then averages model steps onto the observation steps (a daily model
against monthly data). No NumPyro in here: the likelihood lives in :mod:`.likelihood`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

__all__ = [
    "OPERATORS",
    "aggregate",
    "aggregation_index",
    "model_streams",
    "predict_observed",
    "predict_stream",
]


def _biomass(out: Any) -> jnp.ndarray:
    """Live biomass, gC m-2: labile + foliar + root + wood at the end of the step."""
    return out.next_labile_pool + out.next_foliar_pool + out.next_root_pool + out.next_wood_pool


def _water(out: Any) -> jnp.ndarray:
    """Modelled water storage, mm (DALEC993 bucket, or DALEC990 PAW + PUW)."""
    if hasattr(out, "next_water_pool"):
        return out.next_water_pool
    return out.next_paw_pool + out.next_puw_pool


def _nbe(out: Any) -> jnp.ndarray:
    return out.nbe if hasattr(out, "nbe") else out.nee  # no fire in DALEC990


def _fire(out: Any) -> jnp.ndarray:
    return out.total_fire_combust


#: stream -> (operator on outputs, units, whether the stream is an anomaly)
OPERATORS: dict[str, tuple[Callable[[Any], jnp.ndarray], str, bool]] = {
    "gpp": (lambda o: o.gpp, "gC m-2 d-1", False),
    "nee": (lambda o: o.nee, "gC m-2 d-1", False),
    "reco": (lambda o: o.gpp + o.nee, "gC m-2 d-1", False),
    "et": (lambda o: o.ET, "mm d-1", False),
    "lai": (lambda o: o.lai, "m2 m-2", False),
    "biomass": (_biomass, "gC m-2", False),
    "sif": (lambda o: o.SIF, "mW m-2 nm-1 sr-1", False),
    "vod": (lambda o: o.vod, "1", False),
    "nbe": (_nbe, "gC m-2 d-1", False),
    "fire": (_fire, "gC m-2 d-1", False),
    "ewt": (_water, "mm", True),
}


def model_streams(model: Any) -> list[str]:
    """Streams the given process model can predict (its outputs provide them)."""
    fields = set(model.Outputs._fields)
    needs = {
        "sif": {"SIF"},
        "vod": {"vod"},
        "fire": {"total_fire_combust"},
    }
    return [s for s in OPERATORS if needs.get(s, set()) <= fields]


def predict_stream(name: str, outputs: Any) -> jnp.ndarray:
    """Value of stream ``name`` on the model's time steps (before aggregation).

    Parameters
    ----------
    name : str
        A key of :data:`OPERATORS`.
    outputs : NamedTuple
        Model outputs with a trailing time axis.

    Raises
    ------
    KeyError
        If the stream has no operator, or the model lacks the output it needs.
    """
    if name not in OPERATORS:
        raise KeyError(f"no observation operator for stream {name!r}; known: {sorted(OPERATORS)}")
    fn = OPERATORS[name][0]
    try:
        return fn(outputs)
    except AttributeError as e:
        raise KeyError(
            f"stream {name!r} needs an output that {type(outputs).__name__} lacks ({e})"
        ) from None


def aggregation_index(model_time: Any, obs_time: Any, *, obs_end: Any = None) -> np.ndarray:
    """Map each model step to the observation step that contains it.

    Parameters
    ----------
    model_time : array_like of datetime64
        Start of each model step (e.g. daily).
    obs_time : array_like of datetime64
        Start of each observation step (e.g. first of each month); strictly increasing.
    obs_end : datetime-like, optional
        End of the last observation step. Default: one step after it (a calendar month
        for monthly steps, and for a single step starting on the first of a month).

    Returns
    -------
    numpy.ndarray
        Integer index ``(time_model,)``: the observation step of each model step, or
        ``len(obs_time)`` for model steps before the first / after the last observation
        step's span (they are dropped by :func:`aggregate`).
    """
    mt = pd.DatetimeIndex(model_time)
    ot = pd.DatetimeIndex(obs_time)
    if not ot.is_monotonic_increasing or ot.has_duplicates:
        raise ValueError("obs_time must be strictly increasing")
    if obs_end is not None:
        end = pd.Timestamp(obs_end)
    elif len(ot) > 1:
        step = ot[-1] - ot[-2]
        end = ot[-1] + (pd.DateOffset(months=1) if step >= pd.Timedelta(days=28) else step)
    else:
        monthly = ot[-1] == ot[-1].to_period("M").to_timestamp()
        end = ot[-1] + (pd.DateOffset(months=1) if monthly else pd.Timedelta(days=1))
    idx = np.searchsorted(ot.values, mt.values, side="right") - 1
    outside = (idx < 0) | (mt >= end)
    idx = np.where(outside, len(ot), idx)
    return idx.astype(np.int32)


def aggregate(
    values: jnp.ndarray,
    index: jnp.ndarray | None,
    n_obs: int,
    weight: jnp.ndarray | None = None,
) -> jnp.ndarray:
    """Average model steps within each observation step (last axis = time).

    Parameters
    ----------
    values : jax.Array
        ``(..., time_model)`` values of a stream on model steps (units of the stream).
    index : jax.Array or None
        ``(time_model,)`` from :func:`aggregation_index`; None means model and
        observation steps coincide (``values`` is returned as it is).
    n_obs : int
        Number of observation steps.
    weight : jax.Array, optional
        ``(..., time_model)`` non-negative weight of each model step (broadcast against
        ``values``), e.g. 1 on the days whose observations entered a monthly mean and 0
        elsewhere; default 1 everywhere (the mean over every model step of the
        observation step).

    Returns
    -------
    jax.Array
        ``(..., n_obs)`` weighted means (NaN-free: an observation step with no model
        step, or zero total weight, gets 0 and must be masked).
    """
    if index is None:
        return values
    if weight is None:
        weight = jnp.ones(values.shape[-1:], values.dtype)
    weight = jnp.broadcast_to(jnp.asarray(weight, values.dtype), values.shape)
    index = jnp.asarray(index)
    moved = jnp.moveaxis(values * weight, -1, 0)
    sums = jax.ops.segment_sum(moved, index, num_segments=n_obs + 1)[:n_obs]
    counts = jax.ops.segment_sum(jnp.moveaxis(weight, -1, 0), index, num_segments=n_obs + 1)
    counts = counts[:n_obs]
    return jnp.moveaxis(sums / jnp.where(counts > 0, counts, 1.0), 0, -1)


def predict_observed(name: str, outputs: Any, n_obs: int, aggregation: Any = None) -> jnp.ndarray:
    """Prediction of stream ``name`` on its observation steps.

    Parameters
    ----------
    name : str
        A key of :data:`OPERATORS`.
    outputs : NamedTuple
        Model outputs with fields ``(site, time_model)``.
    n_obs : int
        Number of observation steps (``StreamData.value.shape[-1]``).
    aggregation : Aggregation, optional
        ``FitData.aggregation`` (``index`` ``(time_model,)`` and ``weight[name]``
        ``(site, time_model)``); None when model and observation steps coincide.

    Returns
    -------
    jax.Array
        ``(site, n_obs)``: the operator's value (:func:`predict_stream`), averaged over
        the weighted model steps of each observation step where steps differ
        (:func:`aggregate`), in the units of the stream.
    """
    pred = predict_stream(name, outputs)
    if aggregation is None:
        return pred
    return aggregate(pred, aggregation.index, n_obs, weight=aggregation.weight[name])
