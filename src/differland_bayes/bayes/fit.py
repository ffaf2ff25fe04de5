"""Fit the hybrid model to a dataset as a configuration says, into a run directory.

:func:`run_fit` is the library behind ``differland fit``: it checks the run directory
(:mod:`.run`), loads the data (:func:`load_dataset`: synthetic, FluxVal, the FLUXNET
site folder or a canonical file, validated with
:func:`~differland_bayes.validate.validate_dataset` before use), packs it, builds the
process model, the prior network, the guide and the optimiser
(:func:`build_problem`), runs :func:`~.svi.fit_svi` with checkpoints in the run
directory and writes the results. :func:`restore_fit` reads a run back with the
network rebuilt, for prediction and reports. The data live in :mod:`.fit_data`, the
problem in :mod:`.fit_problem`, reading back in :mod:`.fit_restore`; their public names
are re-exported here.

Randomness: the data of a synthetic world come from ``data.synthetic.seed``; the
network's initial weights, the held-out sites and SVI from ``svi.seed`` (nothing is
seeded globally).

Early stopping holds out whole sites: a fraction ``data.holdout_fraction`` of the
fitted sites keep their place in the model (so the guide has a residual for them), but
their observations are masked out of the training data; every
``svi.early_stopping.every`` steps the ELBO is evaluated with only their observations,
which measures how well the network predicts parameters of sites it has not seen.
With ``svi.batch_size`` the guide keeps its site batch size, so the held-out loss is
estimated on random site batches (with enough particles to cover every site once on
average, unless ``svi.early_stopping.num_particles`` says otherwise).
"""

from __future__ import annotations

import logging
import os
import platform
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import jax
import numpy as np

from .._version import __version__
from .checkpoint import load_checkpoint
from .fit_data import (  # noqa: F401
    DATA_DIR_ENV,
    DEFAULT_DATA_DIR,
    FLUXNET_FOLDER,
    FLUXVAL_FILE,
    FLUXVAL_SITES,
    DatasetError,
    _process,
    data_dir,
    load_dataset,
    resolve_source,
)
from .fit_problem import (  # noqa: F401
    FitProblem,
    _init_strategy,
    build_problem,
    resolve_fixed_parameters,
)
from .fit_restore import RestoredFit, restore_fit
from .fitconfig import FitConfig, config_to_dict, config_to_toml, load_config
from .hybrid_process import process_meta
from .model import hybrid_model
from .run import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    DATA_META_FILE,
    HELDOUT_LOSSES_FILE,
    LOSSES_FILE,
    MAP_LOSSES_FILE,
    PARAMS_FILE,
    SUMMARY_FILE,
    RunPlan,
    discard_staging,
    finalize_run,
    open_staging,
    plan_run_dir,
    read_summary,
    save_params,
    write_json,
    write_losses,
)
from .svi import CHECKPOINT_FILE, SVIFit, fit_svi

__all__ = [
    "DATA_DIR_ENV",
    "DEFAULT_DATA_DIR",
    "DatasetError",
    "FitProblem",
    "FitResult",
    "RestoredFit",
    "build_problem",
    "data_dir",
    "load_dataset",
    "resolve_fixed_parameters",
    "resolve_source",
    "restore_fit",
    "run_fit",
]

log = logging.getLogger(__name__)

#: keys that may differ between a run and its continuation (they do not change results)
RESUME_MAY_CHANGE = ("svi.steps", "svi.checkpoint_every", "svi.log_every", "output")


# --------------------------------------------------------------------------- running


@dataclass(frozen=True, eq=False)
class FitResult:
    """The outcome of :func:`run_fit`.

    Attributes
    ----------
    run_dir : Path
        The run directory.
    config : FitConfig
        The configuration as run.
    fit : SVIFit
        The SVI result (parameters, losses, early stopping).
    problem : FitProblem
        Model, network, data and guide of the fit.
    meta : dict
        ``data_meta.json``.
    summary : dict
        ``summary.json``.
    """

    run_dir: Path
    config: FitConfig
    fit: SVIFit
    problem: FitProblem
    meta: dict[str, Any]
    summary: dict[str, Any]


def _flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and k not in ("fixed_parameters", "noise_prior_scale"):
            out.update(_flat(v, key + "."))
        else:
            out[key] = v
    return out


def _check_resume_config(cfg: FitConfig, plan: RunPlan) -> None:
    """Refuse to continue a run with a configuration that changes its results."""
    path = plan.previous_config
    if path is None:
        return
    before = _flat(config_to_dict(load_config(path)))
    now = _flat(config_to_dict(cfg))

    def free(key: str) -> bool:
        return any(key == k or key.startswith(k + ".") for k in RESUME_MAY_CHANGE)

    diff = [
        f"{k} ({before.get(k)!r} -> {now.get(k)!r})"
        for k in sorted(set(before) | set(now))
        if not free(k) and before.get(k) != now.get(k)
    ]
    if diff:
        raise ValueError(
            f"cannot resume {plan.run_dir}: the configuration differs from the run's "
            f"({path}) in {', '.join(diff)}; only svi.steps (and checkpoint/log periods) may "
            "change; use another --out for a different configuration"
        )
    old_steps = before.get("svi.steps")
    if old_steps != cfg.svi.steps and cfg.svi.schedule != "constant":
        log.warning(
            "resuming with svi.steps %s -> %d: the %r learning-rate schedule is stretched to "
            "the new total, so the result differs from a fresh %d-step fit",
            old_steps, cfg.svi.steps, cfg.svi.schedule, cfg.svi.steps,
        )  # fmt: skip


def _iso(time_values: np.ndarray) -> list[str]:
    t = np.asarray(time_values)
    if np.issubdtype(t.dtype, np.datetime64):
        return [str(x) for x in np.datetime_as_string(t, unit="D")]
    return [str(x) for x in t]


def _heldout_from(cfg: FitConfig, problem: FitProblem, sites: list[str]) -> dict[str, str]:
    """Site -> date of its first held-out observation step (``data.holdout = 'months'``).

    The date is that of the first model step of the observation step (ISO), so that
    the held-out period can be found on any time axis.
    """
    if cfg.data.holdout != "months" or problem.heldout_data is None:
        return {}
    masks = [np.asarray(s.mask, bool) for s in problem.heldout_data.streams.values()]
    held = np.logical_or.reduce(masks)
    times = _iso(problem.meta.time)
    agg = problem.data.aggregation
    index = None if agg is None else np.asarray(agg.index)
    out: dict[str, str] = {}
    for site, row in zip(sites, held, strict=True):
        if row.any():
            m = int(np.argmax(row))
            out[site] = times[m if index is None else int(np.argmax(index == m))]
    return out


def _data_meta(cfg: FitConfig, source: str, problem: FitProblem) -> dict[str, Any]:
    meta, held = problem.meta, problem.heldout
    sites = [str(x) for x in meta.sites]
    n_obs = {
        k: {
            "train": int(problem.data.streams[k].mask.sum()),
            "heldout": int(problem.heldout_data.streams[k].mask.sum())
            if problem.heldout_data is not None
            else 0,
        }
        for k in meta.streams
    }
    return {
        "source": {"config": cfg.data.source, "resolved": source},
        "process": {
            "name": problem.process.name,
            "mode": cfg.model.mode,
            "water_stress": cfg.model.water_stress,
            **process_meta(problem.process),
        },
        "sites": sites,
        "train_sites": [s for s, h in zip(sites, held, strict=True) if not h],
        "heldout_sites": [s for s, h in zip(sites, held, strict=True) if h],
        "holdout": cfg.data.holdout,
        "heldout_from": _heldout_from(cfg, problem, sites),
        "time": _iso(meta.time),
        "split": cfg.data.split,
        "spinup_steps": cfg.data.spinup_steps,
        "streams": list(meta.streams),
        "has_uncertainty": {k: bool(v) for k, v in problem.data.has_unc.items()},
        "n_obs": n_obs,
        "predictors": list(meta.predictors),
        "features": list(meta.features),
        "env_mean": np.asarray(meta.env_mean).tolist(),
        "env_sd": np.asarray(meta.env_sd).tolist(),
        "classes": list(meta.classes),
        "free_parameters": list(problem.free_parameters),
        "fixed_parameters": dict(problem.fixed_parameters),
        "batch_size": problem.model_kwargs["subsample_size"],
    }


def _last_finite(x: np.ndarray) -> float:
    finite = x[np.isfinite(x)]
    return float(finite[-1]) if finite.size else float("nan")


def _summary(
    cfg: FitConfig,
    fit: SVIFit,
    *,
    started: datetime,
    wall: float,
    previous_wall: float,
    resumed_from: int,
) -> dict[str, Any]:
    losses = fit.losses
    tail = losses[-max(len(losses) // 10, 1) :]
    h = fit.heldout_losses
    return {
        "final_loss": _last_finite(losses),
        "mean_loss_last_10pct": float(np.nanmean(tail)) if np.isfinite(tail).any() else None,
        "steps": fit.num_steps,
        "steps_requested": cfg.svi.steps,
        "resumed_from_step": resumed_from,
        "rejected_steps": int(np.sum(~np.isfinite(losses))),
        "best_step": int(fit.best_step),
        "params_at_step": int(fit.best_step),
        "stopped_early": bool(fit.stopped_early),
        "best_heldout_loss": float(np.nanmin(h)) if h.size and np.isfinite(h).any() else None,
        "wall_time_s": round(wall, 3),
        "total_wall_time_s": round(previous_wall + wall, 3),
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": {
            "differland_bayes": __version__,
            "jax": jax.__version__,
            "python": platform.python_version(),
        },
        "device": str(jax.devices()[0]),
    }


def _expansion(cfg: FitConfig, discrepancy_scales: tuple[float, ...] = ()) -> dict[str, Any]:
    """``fit_svi`` keywords of the parameter-expansion step (``svi.px_every``).

    The step rescales ``sigma`` / ``eps`` and, with a seasonal discrepancy (its prior
    scales ``discrepancy_scales``), the discrepancy's ``tau`` / ``eta`` the same way.
    """
    if cfg.svi.px_every == 0:
        return {}
    from .expansion import discrepancy_expansion_step, expansion_step

    pr = cfg.prior
    steps = [partial(expansion_step, sigma_prior_scale=pr.sigma_prior_scale,
                     sigma_prior_log_sd=pr.sigma_prior_log_sd)]  # fmt: skip
    if discrepancy_scales:
        steps.append(partial(discrepancy_expansion_step, prior_scales=discrepancy_scales))

    def step(params: Any) -> Any:
        for f in steps:
            params = f(params)
        return params

    return {"param_transform": step, "transform_every": cfg.svi.px_every}


def run_fit(
    cfg: FitConfig,
    out_dir: str | os.PathLike,
    *,
    overwrite: bool = False,
    resume: bool = False,
    progress_bar: bool = True,
) -> FitResult:
    """Fit the hybrid model as ``cfg`` says and write the run directory ``out_dir``.

    Parameters
    ----------
    cfg : FitConfig
        The configuration (e.g. :func:`~.fitconfig.load_config`).
    out_dir : path-like
        The run directory (layout: :mod:`.run`), written atomically.
    overwrite : bool
        Replace an existing run directory (once the new run is complete).
    resume : bool
        Continue the run in ``out_dir`` (complete, to more ``svi.steps``) or an
        interrupted fit of it, from its checkpoint; the configuration must be the run's
        except for ``svi.steps`` (and the checkpoint and log periods). Without either
        a new fit starts.
    progress_bar : bool
        Show a tqdm progress bar with the running ELBO.

    Returns
    -------
    FitResult
        The run directory, the SVI result and what was written.

    Raises
    ------
    FileExistsError
        If ``out_dir`` exists and neither ``overwrite`` nor ``resume`` is given (checked
        before anything runs).
    FileNotFoundError
        If the data source does not exist.
    DatasetError
        If the dataset has validation errors (before any fitting).
    ValueError
        For data and configuration that do not fit together, or a resumed run whose
        configuration differs.
    """
    plan = plan_run_dir(out_dir, overwrite=overwrite, resume=resume)
    _check_resume_config(cfg, plan)
    previous_wall = 0.0
    if plan.resume_from is not None and (plan.resume_from / SUMMARY_FILE).is_file():
        previous_wall = float(read_summary(plan.resume_from).get("total_wall_time_s") or 0.0)

    process = _process(cfg)
    ds, source = load_dataset(cfg, process)
    problem = build_problem(cfg, ds, process)

    staging = open_staging(plan)
    (staging / CONFIG_FILE).write_text(config_to_toml(cfg), encoding="utf-8")
    ckpt = staging / CHECKPOINT_DIR / CHECKPOINT_FILE
    resumed_from = int(load_checkpoint(ckpt).meta["step"]) if plan.resume and ckpt.is_file() else 0
    log.info("fitting into %s (moved to %s when complete)", staging, plan.run_dir)
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    s = cfg.svi
    init_params = None
    try:
        if s.map_steps > 0 and resumed_from == 0:
            from .warmstart import map_warm_start

            warm = map_warm_start(
                cfg, problem, key=jax.random.fold_in(problem.key, 1), progress_bar=progress_bar
            )
            problem, init_params = warm.problem, warm.init_params
            write_losses(staging / MAP_LOSSES_FILE, np.arange(1, len(warm.losses) + 1), warm.losses)
        fit = fit_svi(
            hybrid_model,
            problem.guide,
            key=problem.key,
            num_steps=s.steps,
            optimizer=problem.optimizer,
            model_args=(problem.data,),
            model_kwargs=problem.model_kwargs,
            num_particles=s.num_particles,
            loss=s.loss,
            progress_bar=progress_bar,
            log_every=s.log_every or None,
            early_stopping=problem.early_stopping,
            checkpoint_dir=staging / CHECKPOINT_DIR,
            checkpoint_every=s.checkpoint_every or None,
            resume=plan.resume,
            init_params=init_params,
            **_expansion(cfg, problem.model_config.likelihood.discrepancy_scales()),
        )
    except BaseException:
        discard_staging(plan)
        if staging.is_dir():
            log.warning(
                "fit interrupted; its checkpoint is kept in %s: run the same command with "
                "--resume to continue",
                staging,
            )
        raise
    wall = time.perf_counter() - t0

    meta = _data_meta(cfg, source, problem)
    summary = _summary(
        cfg, fit, started=started, wall=wall, previous_wall=previous_wall, resumed_from=resumed_from
    )
    write_json(staging / DATA_META_FILE, meta)
    save_params(staging / PARAMS_FILE, fit.best_params)
    write_losses(staging / LOSSES_FILE, np.arange(1, len(fit.losses) + 1), fit.losses)
    write_losses(staging / HELDOUT_LOSSES_FILE, fit.heldout_steps, fit.heldout_losses)
    write_json(staging / SUMMARY_FILE, summary)
    run_dir = finalize_run(plan)
    log.info(
        "fit: %d steps, final loss %.6g%s, %.1f s",
        summary["steps"],
        summary["final_loss"],
        f" (stopped early; parameters of step {fit.best_step})" if fit.stopped_early else "",
        wall,
    )
    return FitResult(run_dir, cfg, fit, problem, meta, summary)
