"""First-order pool losses over a step of finite length (spec §1.3i, §8 item 7)."""

from __future__ import annotations

import jax.numpy as jnp
from jax.typing import ArrayLike

__all__ = ["step_loss_rate", "step_loss_rate_bounded"]


def step_loss_rate(k: ArrayLike, delta_t: ArrayLike) -> jnp.ndarray:
    """Mean daily loss per unit pool over a step, as published.

    Parameters
    ----------
    k : array_like
        Daily fractional loss rate, d-1.
    delta_t : array_like
        Step length, d.

    Returns
    -------
    jax.Array
        ``(1 - (1 - k) ** delta_t) / delta_t``, d-1: a pool ``C`` loses ``C * g * delta_t``
        during the step. Published quirk: no guard for ``k > 1``, where the result is
        non-monotone and becomes negative for ``k > 2``.
    """
    return (1.0 - (1.0 - k) ** delta_t) / delta_t


def step_loss_rate_bounded(k: ArrayLike, delta_t: ArrayLike) -> jnp.ndarray:
    """As :func:`step_loss_rate` with ``k`` clipped to ``[0, 1]`` (conserving mode).

    The loss over a step then lies in ``[0, C]`` for any rate and step length.
    """
    return step_loss_rate(jnp.clip(k, 0.0, 1.0), delta_t)
