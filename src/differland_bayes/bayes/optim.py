"""The optimiser of SVI fits: Adam with gradient clipping and a learning-rate schedule.

:func:`make_optimizer` builds it (an optax transformation, or a NumPyro optimiser).
"""

from __future__ import annotations

from typing import Literal

import optax
from numpyro.optim import _NumPyroOptim, optax_to_numpyro

__all__ = ["SCHEDULES", "make_optimizer"]

SCHEDULES = ("cosine", "constant", "exponential")  #: valid schedules of :func:`make_optimizer`


def make_optimizer(
    lr: float = 1e-3,
    *,
    clip_norm: float | None = 10.0,
    schedule: Literal["cosine", "constant", "exponential"] = "cosine",
    warmup_steps: int = 0,
    total_steps: int | None = None,
    end_lr_factor: float = 0.01,
    b1: float = 0.9,
    b2: float = 0.999,
    as_numpyro: bool = False,
) -> optax.GradientTransformation | _NumPyroOptim:
    """Adam with global-norm gradient clipping and a learning-rate schedule.

    Parameters
    ----------
    lr : float
        Peak learning rate.
    clip_norm : float or None
        Clip gradients to this global norm before Adam; ``None`` disables clipping.
    schedule : {"cosine", "constant", "exponential"}
        After the warm-up: ``"constant"`` keeps ``lr``; ``"cosine"`` decays it along a
        half cosine to ``lr * end_lr_factor`` at ``total_steps``; ``"exponential"`` decays
        it geometrically to ``lr * end_lr_factor`` at ``total_steps``.
    warmup_steps : int
        Length of a linear warm-up from 0 to ``lr`` (0: none).
    total_steps : int, optional
        Length of the whole schedule, warm-up included; required by the decaying
        schedules. Later steps keep the final rate.
    end_lr_factor : float
        Final learning rate as a fraction of ``lr`` for the decaying schedules.
    b1, b2 : float
        Adam's moment decay rates.
    as_numpyro : bool
        Return the transformation wrapped for NumPyro with
        :func:`numpyro.optim.optax_to_numpyro` instead of the bare Optax object (both are
        accepted by :func:`fit_svi` and :class:`numpyro.infer.SVI`).

    Returns
    -------
    optax.GradientTransformation or numpyro.optim._NumPyroOptim
        The optimizer.

    Raises
    ------
    ValueError
        For an unknown schedule, a decaying schedule without ``total_steps``, or
        inconsistent step counts / rates.

    Notes
    -----
    The schedule is indexed by the optimizer's own update count, which does not advance
    on steps rejected by ``stable_update``.
    """
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr}")
    if clip_norm is not None and not clip_norm > 0:
        raise ValueError(f"clip_norm must be positive or None, got {clip_norm}")
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; valid schedules: {', '.join(SCHEDULES)}")
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
    if schedule != "constant":
        if total_steps is None:
            raise ValueError(f"schedule {schedule!r} needs total_steps")
        if total_steps <= warmup_steps:
            raise ValueError(
                f"total_steps ({total_steps}) must exceed warmup_steps ({warmup_steps})"
            )
        if not 0 < end_lr_factor <= 1:
            raise ValueError(f"end_lr_factor must be in (0, 1], got {end_lr_factor}")

    if schedule == "constant":
        after: optax.Schedule = optax.constant_schedule(lr)
    elif schedule == "cosine":
        assert total_steps is not None
        after = optax.cosine_decay_schedule(lr, total_steps - warmup_steps, alpha=end_lr_factor)
    else:
        assert total_steps is not None
        after = optax.exponential_decay(
            lr,
            transition_steps=total_steps - warmup_steps,
            decay_rate=end_lr_factor,
            end_value=lr * end_lr_factor,
        )
    if warmup_steps:
        sched = optax.join_schedules(
            [optax.linear_schedule(0.0, lr, warmup_steps), after], [warmup_steps]
        )
    else:
        sched = after

    parts = [] if clip_norm is None else [optax.clip_by_global_norm(clip_norm)]
    tx = optax.chain(*parts, optax.adam(sched, b1=b1, b2=b2))
    return optax_to_numpyro(tx) if as_numpyro else tx
