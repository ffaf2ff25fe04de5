"""Run a process model over a forcing series: one ``lax.scan`` over time."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from .base import AbstractDalec

__all__ = ["simulate"]


def _check_forcing(model: AbstractDalec, forcing: Any) -> None:
    if not isinstance(forcing, model.Forcing):
        raise TypeError(
            f"{model.name}: forcing must be a {model.Forcing.__name__}, found "
            f"{type(forcing).__name__}; build it with build_forcing(...) or "
            f"model.forcing_from_matrix(...)"
        )
    lengths = {
        name: jnp.shape(v)[-1] if jnp.ndim(v) else None
        for name, v in zip(forcing._fields, forcing, strict=True)
    }
    sizes = {n for n in lengths.values() if n is not None}
    if len(sizes) != 1:
        raise ValueError(
            f"{model.name}: every forcing field needs the same time length (last axis); "
            f"found {lengths}"
        )


def simulate(model: AbstractDalec, params: Any, pools0: Any, forcing: Any) -> Any:
    """Simulate one site over the whole forcing series.

    Parameters
    ----------
    model : AbstractDalec
        The process model (e.g. ``Dalec993()``), carrying its components and mode.
    params : NamedTuple
        Physical parameters of the model (``model.Params``), scalars per site.
    pools0 : NamedTuple
        Initial pools (``model.Pools``): carbon in gC m-2, water in mm.
    forcing : NamedTuple
        ``model.Forcing`` with a time axis of length ``T`` on every field.

    Returns
    -------
    NamedTuple
        ``model.Outputs`` with a leading time axis of length ``T``: fluxes of each step
        and pools at its end (``next_*``).

    Notes
    -----
    Pure and traceable: works under ``jax.jit``, ``jax.vmap`` (over sites: map ``params``,
    ``pools0`` and ``forcing`` on axis 0) and ``jax.grad``. The dtype follows the inputs:
    float32 by default, float64 with ``jax.config.update("jax_enable_x64", True)``.
    """
    _check_forcing(model, forcing)
    dtype = jnp.result_type(*forcing, *params)
    pools0 = type(pools0)(*(jnp.broadcast_to(jnp.asarray(p, dtype), jnp.shape(p)) for p in pools0))
    drivers = model.prepare(params, forcing)

    def body(pools, drivers_t):
        return model.step(pools, drivers_t, params)

    _, outputs = jax.lax.scan(body, pools0, drivers)
    return outputs
