"""A model-agnostic stochastic variational inference (SVI) runner.

:func:`fit_svi` fits any NumPyro model (a callable plus its arguments) with any guide:

- a jitted update step (:meth:`numpyro.infer.SVI.stable_update` by default, so a step
  with a non-finite loss or gradient leaves the state as it was) driven by a Python loop
  with a :mod:`tqdm` progress bar showing the smoothed ELBO loss, and progress logged via
  :mod:`logging`;
- optional early stopping on a held-out loss (:class:`EarlyStopping`);
- optional checkpoints of the complete SVI state (optimizer state, PRNG key, step, loss
  history, early-stopping bookkeeping), written atomically, from which a run resumes
  bit-for-bit: fitting ``N`` steps and resuming to ``N + M`` gives exactly the
  parameters and losses of one ``N + M``-step run.

:func:`make_optimizer` (:mod:`.optim`) builds Adam with gradient clipping and a
learning-rate schedule; :func:`make_guide` (:mod:`.guides`) builds the autoguides that
work with subsampled plates; both are re-exported here.

Randomness comes only from the explicit ``key`` argument; nothing is seeded globally.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import jax
import numpy as np
import optax
from numpyro.infer import SVI, Trace_ELBO, TraceMeanField_ELBO
from numpyro.infer.elbo import ELBO
from numpyro.infer.svi import SVIState
from numpyro.optim import _NumPyroOptim, optax_to_numpyro
from tqdm.auto import tqdm

from .checkpoint import load_checkpoint, restore_tree, save_checkpoint
from .guides import GUIDE_KINDS, make_guide
from .optim import SCHEDULES, make_optimizer

__all__ = [
    "CHECKPOINT_FILE",
    "GUIDE_KINDS",
    "LOSS_KINDS",
    "SCHEDULES",
    "EarlyStopping",
    "SVIFit",
    "fit_svi",
    "make_guide",
    "make_optimizer",
]

log = logging.getLogger(__name__)

LOSS_KINDS = ("trace", "meanfield")  #: valid ``loss`` names of :func:`fit_svi`
CHECKPOINT_FILE = "checkpoint.npz"  #: file name of the checkpoint inside ``checkpoint_dir``

_SMOOTHING = 0.05  #: weight of the newest loss in the exponential moving average shown
_SYNC_EVERY = 50  #: at most this many steps between host transfers of the losses


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, eq=False)
class EarlyStopping:
    """Early stopping on a held-out ELBO loss.

    Every ``every`` steps the loss is evaluated (as :meth:`numpyro.infer.SVI.evaluate`
    does, with the current state's key) on held-out data; the fit stops once it has not
    improved by more than ``min_delta`` for ``patience`` evaluations in a row, and the
    parameters at the best evaluation are kept.

    Parameters
    ----------
    patience : int
        Evaluations without improvement before stopping.
    min_delta : float
        Improvement required to reset the patience counter.
    every : int
        Evaluate after every ``every``-th step (global step count, so resumed runs
        evaluate at the same steps).
    heldout_kwargs : mapping, optional
        Model keyword arguments for the held-out evaluation (e.g. other sites' or months'
        data or masks), merged over the fit's ``model_kwargs``.
    heldout_args : tuple, optional
        Positional model arguments for the evaluation; default the fit's ``model_args``.
    num_particles : int, optional
        Particles for the held-out ELBO (same ELBO class as the fit); more particles mean
        a less noisy stopping criterion. Default: the fit's loss as is.
    """

    patience: int = 10
    min_delta: float = 0.0
    every: int = 100
    heldout_kwargs: Mapping[str, Any] | None = None
    heldout_args: tuple[Any, ...] | None = None
    num_particles: int | None = None

    def __post_init__(self) -> None:
        """Validate the settings."""
        if self.patience < 1:
            raise ValueError(f"patience must be >= 1, got {self.patience}")
        if self.every < 1:
            raise ValueError(f"every must be >= 1, got {self.every}")
        if self.min_delta < 0:
            raise ValueError(f"min_delta must be >= 0, got {self.min_delta}")
        if self.num_particles is not None and self.num_particles < 1:
            raise ValueError(f"num_particles must be >= 1, got {self.num_particles}")


class SVIFit(NamedTuple):
    """The result of :func:`fit_svi`."""

    svi: SVI  #: the SVI object (initialised: ``svi.get_params(state)`` works)
    guide: Any  #: the guide
    params: dict[str, Any]  #: constrained parameters after the last step
    state: SVIState  #: the final SVI state (pass to ``svi.update`` etc. to continue)
    losses: np.ndarray  #: ELBO loss of every step, resumed history included (NaN: rejected)
    best_params: dict[str, Any]  #: params at the best held-out loss (final params without it)
    best_step: int  #: step of ``best_params``
    stopped_early: bool  #: whether early stopping ended the fit
    heldout_losses: np.ndarray  #: held-out loss of each early-stopping evaluation
    heldout_steps: np.ndarray  #: step of each held-out evaluation

    @property
    def num_steps(self) -> int:
        """Number of steps taken in total (resumed history included)."""
        return len(self.losses)


# --------------------------------------------------------------------------- helpers


def _make_loss(loss: str | ELBO, num_particles: int) -> ELBO:
    if isinstance(loss, ELBO):
        return loss
    if loss == "trace":
        return Trace_ELBO(num_particles=num_particles)
    if loss == "meanfield":
        return TraceMeanField_ELBO(num_particles=num_particles)
    raise ValueError(f"unknown loss {loss!r}; valid losses: {', '.join(LOSS_KINDS)}")


def _to_numpyro_optim(optimizer: Any) -> _NumPyroOptim:
    if isinstance(optimizer, _NumPyroOptim):
        return optimizer
    if isinstance(optimizer, optax.GradientTransformation):
        return optax_to_numpyro(optimizer)
    raise TypeError(
        "optimizer must be an optax.GradientTransformation or a numpyro.optim optimizer, "
        f"got {type(optimizer).__name__}"
    )


def _partition(tree: Any) -> tuple[list[Any], Callable[[list[Any]], Any]]:
    """Split a pytree into its JAX-array leaves (traced under jit) and the rest (closed over).

    NumPy arrays, Python scalars, strings and callables stay static, as they are when
    NumPyro's ``svi.run`` closes over its arguments.
    """
    leaves, treedef = jax.tree.flatten(tree)
    idx = [i for i, leaf in enumerate(leaves) if isinstance(leaf, jax.Array)]

    def rebuild(dynamic: list[Any]) -> Any:
        merged = list(leaves)
        for i, value in zip(idx, dynamic, strict=True):
            merged[i] = value
        return jax.tree.unflatten(treedef, merged)

    return [leaves[i] for i in idx], rebuild


def _key_fingerprint(key: Any) -> list[int]:
    data = (
        jax.random.key_data(key) if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    )
    return [int(v) for v in np.asarray(jax.device_get(data)).ravel()]


def _prepare_checkpoint_dir(
    checkpoint_dir: str | os.PathLike, *, resume: bool, overwrite: bool
) -> tuple[Path, bool]:
    """Create/check the directory; return the checkpoint path and whether to load it."""
    cdir = Path(checkpoint_dir)
    path = cdir / CHECKPOINT_FILE
    if cdir.exists() and not cdir.is_dir():
        raise NotADirectoryError(f"checkpoint_dir {cdir} exists and is not a directory")
    if resume and path.is_file():
        return path, True
    if resume:
        log.info("no checkpoint at %s: starting from scratch", path)
    elif cdir.is_dir() and any(cdir.iterdir()) and not overwrite:
        raise FileExistsError(
            f"checkpoint directory {cdir} is not empty; refusing to start a new fit there "
            f"(pass resume=True to continue the checkpoint in it, overwrite=True to replace "
            f"it, or choose an empty directory)"
        )
    cdir.mkdir(parents=True, exist_ok=True)
    return path, False


# --------------------------------------------------------------------------- fitting


def fit_svi(
    model: Callable[..., Any],
    guide: Callable[..., Any],
    *,
    key: jax.Array,
    num_steps: int,
    optimizer: optax.GradientTransformation | _NumPyroOptim,
    model_args: tuple[Any, ...] = (),
    model_kwargs: Mapping[str, Any] | None = None,
    num_particles: int = 1,
    loss: Literal["trace", "meanfield"] | ELBO = "trace",
    progress_bar: bool = True,
    log_every: int | None = None,
    early_stopping: EarlyStopping | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
    stable_update: bool = True,
    init_params: dict[str, Any] | None = None,
    forward_mode_differentiation: bool = False,
    param_transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    transform_every: int | None = None,
) -> SVIFit:
    """Fit a NumPyro model by SVI.

    Parameters
    ----------
    model, guide : callable
        NumPyro model and guide (e.g. from :func:`make_guide`).
    key : jax.Array
        PRNG key (``jax.random.key`` or ``jax.random.PRNGKey``); the only randomness.
    num_steps : int
        Total number of optimisation steps. On resume this is the *total* including the
        checkpointed steps, so re-running an interrupted command unchanged with
        ``resume=True`` finishes it.
    optimizer : optax.GradientTransformation or numpyro optimizer
        E.g. from :func:`make_optimizer`; Optax objects are wrapped with
        :func:`numpyro.optim.optax_to_numpyro`.
    model_args : tuple
        Positional arguments of model and guide.
    model_kwargs : mapping, optional
        Keyword arguments of model and guide. JAX-array leaves (in ``model_args`` too)
        are traced by the jitted step; everything else (NumPy arrays, Python numbers,
        strings, callables) is a compile-time constant. Pass data as ``jnp`` arrays.
    num_particles : int
        Particles per ELBO estimate (ignored when ``loss`` is an ELBO instance).
    loss : {"trace", "meanfield"} or numpyro.infer.elbo.ELBO
        :class:`~numpyro.infer.Trace_ELBO`, :class:`~numpyro.infer.TraceMeanField_ELBO`
        (analytic KL where available), or a ready ELBO object.
    progress_bar : bool
        Show a tqdm bar whose postfix gives the smoothed loss.
    log_every : int, optional
        Log (``INFO``) the loss every this many steps; default ``num_steps // 10``.
    early_stopping : EarlyStopping, optional
        Stop on a held-out loss; see :class:`EarlyStopping`.
    checkpoint_dir : path-like, optional
        Directory for ``checkpoint.npz``, written atomically every ``checkpoint_every``
        steps and at the end. A new fit refuses a non-empty directory unless ``resume``
        or ``overwrite``.
    checkpoint_every : int, optional
        Checkpoint period in steps (needs ``checkpoint_dir``; without it only the final
        state is saved).
    resume : bool
        Continue from the checkpoint in ``checkpoint_dir`` if there is one (else start
        afresh). The model, guide, optimizer (schedule and ``total_steps`` included),
        loss, data and early-stopping settings must be those of the checkpointed run for
        the continuation to be exact; a mismatch in the state's structure raises, other
        detectable differences (loss, particles, ``stable_update``) are logged as
        warnings. ``key`` only initialises the template state; the checkpointed PRNG
        state is continued.
    overwrite : bool
        Allow a new fit to write into a non-empty ``checkpoint_dir``, replacing its
        checkpoint.
    stable_update : bool
        Use :meth:`~numpyro.infer.SVI.stable_update`: a step with a non-finite loss or
        gradient keeps the previous state (its loss is recorded as NaN).
    init_params : dict, optional
        Initial values of guide parameters (as :meth:`numpyro.infer.SVI.init`).
    forward_mode_differentiation : bool
        Use forward-mode autodiff (for models with ``while_loop``).
    param_transform : callable, optional
        A map of the constrained guide params applied after every ``transform_every``-th
        step, the last included (e.g. the parameter-expansion step of :mod:`.expansion`);
        it must keep the optimisation's target meaningful. Needs an optax optimizer.
        Deterministic, so a run extended by ``resume`` stays bit-for-bit one run.
    transform_every : int, optional
        Period of ``param_transform`` in steps.

    Returns
    -------
    SVIFit
        Parameters, state, loss history and early-stopping results.

    Raises
    ------
    ValueError
        For invalid step counts or option combinations, or a checkpoint that does not
        match the current model/guide/optimizer.
    FileExistsError
        If ``checkpoint_dir`` is not empty and neither ``resume`` nor ``overwrite``.
    """
    if (param_transform is None) != (transform_every is None):
        raise ValueError("param_transform and transform_every go together; give both or neither")
    if transform_every is not None and transform_every < 1:
        raise ValueError(f"transform_every must be >= 1, got {transform_every}")
    if param_transform is not None and not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(
            "param_transform needs an optax.GradientTransformation optimizer (its state holds "
            f"the params where they can be replaced), got {type(optimizer).__name__}"
        )
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    if log_every is None:
        log_every = max(num_steps // 10, 1)
    if log_every < 1:
        raise ValueError(f"log_every must be >= 1, got {log_every}")
    if checkpoint_every is not None and checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
    if checkpoint_dir is None and (checkpoint_every is not None or resume):
        raise ValueError("checkpoint_every and resume need a checkpoint_dir")
    model_kwargs = dict(model_kwargs or {})

    ckpt_path: Path | None = None
    load = False
    if checkpoint_dir is not None:
        ckpt_path, load = _prepare_checkpoint_dir(
            checkpoint_dir, resume=resume, overwrite=overwrite
        )

    elbo = _make_loss(loss, num_particles)
    svi = SVI(model, guide, _to_numpyro_optim(optimizer), elbo)
    state = svi.init(key, *model_args, init_params=init_params, **model_kwargs)
    meta_now = {
        "loss": type(elbo).__name__,
        "num_particles": int(getattr(elbo, "num_particles", 1)),
        "stable_update": bool(stable_update),
        "init_key": _key_fingerprint(key),
    }

    # ---- bookkeeping, possibly restored from a checkpoint
    losses: list[float] = []
    heldout_steps: list[int] = []
    heldout_losses: list[float] = []
    step = 0
    best_params: dict[str, Any] | None = None
    best_step = 0
    best_loss = math.inf
    wait = 0
    stopped = False
    if load:
        assert ckpt_path is not None
        ckpt = load_checkpoint(ckpt_path)
        state = restore_tree(ckpt, "state", state)
        meta = ckpt.meta
        if meta.get("init_key") != meta_now["init_key"]:
            log.info(
                "resuming %s with another key than the checkpointed run's; the key is not "
                "used (the checkpoint's PRNG state continues)",
                ckpt_path,
            )
        for name in ("loss", "num_particles", "stable_update"):
            if meta.get(name) != meta_now[name]:
                log.warning(
                    "resuming %s with %s=%r, but the checkpoint was written with %r: the "
                    "continuation will not match an uninterrupted run",
                    ckpt_path,
                    name,
                    meta_now[name],
                    meta.get(name),
                )
        step = int(meta["step"])
        losses = [float(x) for x in ckpt.arrays["losses"]]
        heldout_steps = [int(x) for x in ckpt.arrays["heldout_steps"]]
        heldout_losses = [float(x) for x in ckpt.arrays["heldout_losses"]]
        if "best_params" in ckpt.leaves:
            best_params = restore_tree(ckpt, "best_params", svi.get_params(state))
        best_step = int(meta["best_step"])
        best_loss = float(meta["best_loss"])
        wait = int(meta["wait"])
        stopped = bool(meta["stopped_early"]) and early_stopping is not None
        log.info("resumed from %s at step %d", ckpt_path, step)
        if stopped:
            log.info("the checkpointed fit had stopped early at step %d; not continuing", step)
        elif step >= num_steps:
            log.info("checkpoint is at step %d >= num_steps=%d; nothing to do", step, num_steps)

    def save(at_step: int) -> None:
        assert ckpt_path is not None
        meta = {
            **meta_now,
            "step": at_step,
            "best_step": best_step,
            "best_loss": best_loss,
            "wait": wait,
            "stopped_early": stopped,
        }
        trees: dict[str, Any] = {"state": state}
        if best_params is not None:
            trees["best_params"] = best_params
        save_checkpoint(
            ckpt_path,
            trees=trees,
            arrays={
                "losses": np.asarray(losses, dtype=np.float64),
                "heldout_steps": np.asarray(heldout_steps, dtype=np.int64),
                "heldout_losses": np.asarray(heldout_losses, dtype=np.float64),
            },
            meta=meta,
        )
        log.debug("checkpoint at step %d -> %s", at_step, ckpt_path)

    # ---- jitted step and held-out evaluation
    dyn, rebuild = _partition((tuple(model_args), model_kwargs))
    update = svi.stable_update if stable_update else svi.update

    def _step(svi_state: SVIState, dyn_leaves: list[Any]) -> tuple[SVIState, jax.Array]:
        args, kwargs = rebuild(dyn_leaves)
        return update(
            svi_state, *args, forward_mode_differentiation=forward_mode_differentiation, **kwargs
        )

    step_fn = jax.jit(_step)

    eval_fn = None
    eval_dyn: list[Any] = []
    if early_stopping is not None:
        h_args = early_stopping.heldout_args
        h_args = tuple(model_args) if h_args is None else tuple(h_args)
        h_kwargs = {**model_kwargs, **dict(early_stopping.heldout_kwargs or {})}
        eval_dyn, eval_rebuild = _partition((h_args, h_kwargs))
        eval_elbo = (
            elbo
            if early_stopping.num_particles is None
            else type(elbo)(num_particles=early_stopping.num_particles)
        )

        def _evaluate(svi_state: SVIState, dyn_leaves: list[Any]) -> jax.Array:
            args, kwargs = eval_rebuild(dyn_leaves)
            # same key derivation as SVI.evaluate
            _, rng_eval = jax.random.split(svi_state.rng_key)
            return eval_elbo.loss(
                rng_eval, svi.get_params(svi_state), svi.model, svi.guide, *args, **kwargs
            )

        eval_fn = jax.jit(_evaluate)

    # ---- the loop
    last_saved = step if load else -1
    pending: list[jax.Array] = []
    smoothed = math.nan
    for x in losses[-100:]:
        smoothed = _ema(smoothed, x)
    bar = tqdm(
        total=num_steps,
        initial=min(step, num_steps),
        disable=not progress_bar,
        desc="SVI",
        dynamic_ncols=True,
    )
    if step < num_steps and not stopped:
        log.info("SVI: steps %d..%d of %d", step + 1, num_steps, num_steps)
    try:
        while step < num_steps and not stopped:
            state, loss_val = step_fn(state, dyn)
            pending.append(loss_val)
            step += 1
            if transform_every is not None and step % transform_every == 0:
                assert param_transform is not None
                state = _transform_state(svi, state, param_transform)
            es_now = early_stopping is not None and step % early_stopping.every == 0
            ck_now = ckpt_path is not None and checkpoint_every and step % checkpoint_every == 0
            log_now = step % log_every == 0
            if pending and (
                len(pending) >= _SYNC_EVERY or es_now or ck_now or log_now or step == num_steps
            ):
                new = [float(x) for x in jax.device_get(pending)]
                pending = []
                losses.extend(new)
                for x in new:
                    smoothed = _ema(smoothed, x)
                bar.update(len(new))
                bar.set_postfix(loss=f"{new[-1]:.4g}", smoothed=f"{smoothed:.4g}", refresh=False)
            if log_now:
                log.info(
                    "step %d/%d: loss %.6g (smoothed %.6g)", step, num_steps, losses[-1], smoothed
                )
            if es_now:
                assert early_stopping is not None and eval_fn is not None
                h = float(eval_fn(state, eval_dyn))
                heldout_steps.append(step)
                heldout_losses.append(h)
                if h < best_loss - early_stopping.min_delta:
                    best_loss, best_step, best_params, wait = h, step, svi.get_params(state), 0
                else:
                    wait += 1
                log.debug(
                    "step %d: held-out loss %.6g (best %.6g at %d)", step, h, best_loss, best_step
                )
                if wait >= early_stopping.patience:
                    stopped = True
                    log.info(
                        "early stopping at step %d: held-out loss has not improved for %d "
                        "evaluations (best %.6g at step %d)",
                        step,
                        wait,
                        best_loss,
                        best_step,
                    )
            if ck_now:
                save(step)
                last_saved = step
    finally:
        bar.close()

    if ckpt_path is not None and step != last_saved:
        save(step)

    params = svi.get_params(state)
    if best_params is None:
        best_params, best_step = params, step
    return SVIFit(
        svi=svi,
        guide=guide,
        params=params,
        state=state,
        losses=np.asarray(losses, dtype=np.float64),
        best_params=best_params,
        best_step=best_step,
        stopped_early=stopped,
        heldout_losses=np.asarray(heldout_losses, dtype=np.float64),
        heldout_steps=np.asarray(heldout_steps, dtype=np.int64),
    )


def _transform_state(
    svi: SVI, state: SVIState, transform: Callable[[dict[str, Any]], dict[str, Any]]
) -> SVIState:
    """Replace the params held in an optax-wrapped SVI state by ``transform`` of them.

    ``transform`` sees and returns constrained params (as :meth:`SVI.get_params`); each
    param it changes is mapped back to the unconstrained space the optimiser works in.
    The optimiser's moments are kept.
    """
    inv_transforms = svi.constrain_fn.args[0]  # functools.partial(transform_fn, transforms)
    i, (unconstrained, opt_state) = state.optim_state
    params = svi.get_params(state)
    new = transform(params)
    updated = {
        k: (v if new[k] is params[k] else inv_transforms[k].inv(new[k]).astype(v.dtype))
        for k, v in unconstrained.items()
    }
    return state._replace(optim_state=(i, (updated, opt_state)))


def _ema(current: float, new: float) -> float:
    """Exponential moving average of the finite losses (NaN until the first one)."""
    if not math.isfinite(new):
        return current
    if math.isnan(current):
        return new
    return (1 - _SMOOTHING) * current + _SMOOTHING * new
