"""Fit the hybrid model to a dataset as a configuration says, into a run directory.

:func:`run_fit` is the library behind ``differland fit``: it checks the run directory
(:mod:`.run`), loads the data (:func:`load_dataset`: synthetic, FluxVal, the FLUXNET
site folder or a canonical file, validated with
:func:`~differland_bayes.validate.validate_dataset` before use), packs it, builds the
process model, the prior network, the guide and the optimiser
(:func:`build_problem`), runs :func:`~.svi.fit_svi` with checkpoints in the run
directory and writes the results. :func:`restore_fit` reads a run back with the
network rebuilt, for prediction and reports.

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
import math
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
import jax.numpy as jnp
import numpy as np
import xarray as xr
from numpyro.infer import init_to_median

from .._version import __version__
from ..defaults import default_theta
from ..process.base import AbstractDalec
from ..process.registry import get_model
from .checkpoint import load_checkpoint
from .config import ModelConfig
from .data import FitData, FitMeta, StreamData, pack
from .fitconfig import FitConfig, config_to_dict, config_to_toml, load_config
from .model import (
    DETERMINISTIC_SITES,
    LOCAL_PLATES,
    LOCAL_SITES,
    NET_NAME,
    ParameterLayout,
    hybrid_model,
    init_prior_net,
    initial_values,
    uninformed_parameters,
)
from .prior_net import EnvPriorNet
from .run import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    DATA_META_FILE,
    HELDOUT_LOSSES_FILE,
    LOSSES_FILE,
    PARAMS_FILE,
    SUMMARY_FILE,
    LossTrace,
    RunPlan,
    discard_staging,
    finalize_run,
    load_run,
    open_staging,
    plan_run_dir,
    read_summary,
    restore_params,
    save_params,
    write_json,
    write_losses,
)
from .svi import CHECKPOINT_FILE, EarlyStopping, SVIFit, fit_svi, make_guide, make_optimizer

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

DATA_DIR_ENV = "DIFFERLAND_DATA_DIR"  #: environment variable naming the data folder
DEFAULT_DATA_DIR = Path("..") / "shared" / "data"  #: data folder without it (from the cwd)
FLUXVAL_FILE = Path("cardamom-fluxval") / "fluxval_monthly.nc"
FLUXVAL_SITES = Path("cardamom-fluxval") / "sites.csv"
FLUXNET_FOLDER = Path("fluxnet-sites")
#: keys that may differ between a run and its continuation (they do not change results)
RESUME_MAY_CHANGE = ("svi.steps", "svi.checkpoint_every", "svi.log_every", "output")


class DatasetError(ValueError):
    """The dataset of a fit is unusable (validation errors); ``errors`` lists them."""

    def __init__(self, message: str, errors: list[str]) -> None:
        super().__init__(message)
        self.errors = errors


# --------------------------------------------------------------------------- data


def data_dir() -> Path:
    """Return the data folder: ``$DIFFERLAND_DATA_DIR``, else ``../shared/data`` (cwd)."""
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env) if env else DEFAULT_DATA_DIR


def resolve_source(cfg: FitConfig) -> tuple[str, Path | None]:
    """Return the kind of data source and its path.

    Returns
    -------
    kind : {"synthetic", "fluxval", "fluxnet-sites", "file"}
        The source kind.
    path : Path or None
        The FluxVal file, the FLUXNET site folder or the dataset (relative paths joined
        to :func:`data_dir`); None for synthetic data.
    """
    src = cfg.data.source
    if src == "synthetic":
        return "synthetic", None
    if src == "fluxval":
        return "fluxval", data_dir() / FLUXVAL_FILE
    if src == "fluxnet-sites":
        return "fluxnet-sites", data_dir() / FLUXNET_FOLDER
    path = Path(src).expanduser()
    return "file", path if path.is_absolute() else data_dir() / path


def _missing(path: Path, what: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"data.source: {what} not found: {path} (relative paths are resolved against the "
        f"data folder {data_dir()}; set {DATA_DIR_ENV} to change it)"
    )


def _read_source(cfg: FitConfig, process: AbstractDalec) -> tuple[xr.Dataset, str]:
    kind, path = resolve_source(cfg)
    d = cfg.data
    if kind == "synthetic":
        from ..synthetic import synthesize

        s = d.synthetic
        log.info("data: synthetic world, %d sites x %d years, seed %d", s.sites, s.years, s.seed)
        ds = synthesize(
            s.sites,
            model=process,
            years=s.years,
            seed=s.seed,
            free_parameters=list(s.free_parameters) or None,
            streams=list(s.streams) or None,
            gap_fraction=s.gap_fraction,
        )
        return ds, "synthetic world"
    assert path is not None
    if kind == "fluxval":
        from ..io import read_fluxval

        if not path.is_file():
            raise _missing(path, "CARDAMOM-FluxVal file")
        sites_csv = data_dir() / FLUXVAL_SITES
        log.info("data: CARDAMOM-FluxVal %s", path)
        return read_fluxval(path, sites_csv if sites_csv.is_file() else None), str(path)
    if kind == "fluxnet-sites":
        from ..io import read_fluxnet_sites

        if not path.is_dir():
            raise _missing(path, "FLUXNET site folder")
        monthly = process.name == "dalec993"
        log.info("data: FLUXNET sites in %s (%s, period %s)", path,
                 "monthly" if monthly else "daily", d.period)  # fmt: skip
        ds = read_fluxnet_sites(path, sites=list(d.sites) or None, monthly=monthly, period=d.period)
        return ds, str(path)
    from ..dataset import read_dataset

    if not path.exists():
        raise _missing(path, "dataset")
    log.info("data: %s", path)
    try:
        return read_dataset(path), str(path)
    except (OSError, KeyError, TypeError, ValueError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"data.source: cannot read {path}: {reason}") from e


def _select_sites(ds: xr.Dataset, cfg: FitConfig) -> xr.Dataset:
    d = cfg.data
    if d.sites and d.source != "fluxnet-sites":
        have = [str(s) for s in ds["site"].values]
        unknown = [s for s in d.sites if s not in have]
        if unknown:
            raise ValueError(f"data.sites: {unknown} not in the dataset (it has {len(have)} sites)")
        ds = ds.sel(site=list(d.sites))
    if d.site_split != "all" and "split_site" in ds:
        keep = np.asarray(ds["split_site"].values).astype(str) == d.site_split
        if not keep.any():
            raise ValueError(
                f"data.site_split: no site has split_site == {d.site_split!r}; use "
                "site_split = 'all' or another split"
            )
        ds = ds.isel(site=np.flatnonzero(keep))
    return ds


def load_dataset(cfg: FitConfig, process: AbstractDalec | None = None) -> tuple[xr.Dataset, str]:
    """Load, validate and select the data of a fit.

    Parameters
    ----------
    cfg : FitConfig
        The configuration (``[data]``, and ``[model]`` for the process model).
    process : AbstractDalec, optional
        The process model; default built from ``cfg.model``.

    Returns
    -------
    ds : xarray.Dataset
        The canonical dataset on the model's time step, reduced to the fitted sites
        (``data.sites``, ``data.site_split``). Daily data are aggregated to months for
        the monthly ``dalec993``.
    source : str
        Description of the source (the path, or "synthetic world").

    Raises
    ------
    FileNotFoundError
        If the source file or folder does not exist.
    DatasetError
        If the dataset has validation errors (each is logged; the message gives the
        first and the count).
    ValueError
        If the site selection leaves nothing.
    """
    from ..validate import validate_dataset

    if process is None:
        process = _process(cfg)
    ds, source = _read_source(cfg, process)
    report = validate_dataset(ds)
    for p in report.notices:
        log.debug("%s", p)
    if not report.ok:
        for p in report.errors:
            log.error("%s", p)
        first = str(report.errors[0])
        n = len(report.errors)
        hint = f"; 'differland validate {source}' lists them" if cfg.data.source not in (
            "synthetic", "fluxval", "fluxnet-sites") else ""  # fmt: skip
        raise DatasetError(
            f"{source}: the dataset has {n} error{'s' if n != 1 else ''}, refusing to fit "
            f"(first: {first}){hint}",
            [str(p) for p in report.errors],
        )
    log.info(
        "data: %d site(s) x %d %s step(s), valid (%d notice(s))",
        report.n_sites, report.n_times, report.step or "", len(report.notices),
    )  # fmt: skip
    if process.name == "dalec993" and report.step == "daily":
        from ..io import to_monthly

        log.info("data: daily; aggregating to calendar months for dalec993")
        ds = to_monthly(ds)
    ds = _select_sites(ds, cfg)
    if "site_time_valid" in ds and not bool(ds["site_time_valid"].all()):
        raise ValueError(
            f"{source}: the sites have different records (site_time_valid), but a fit needs "
            "forcing at every site and time step; use data.period = 'common' (fluxnet-sites) "
            "or choose data.sites whose records cover the same period"
        )
    return ds, source


# --------------------------------------------------------------------------- the problem


def _process(cfg: FitConfig) -> AbstractDalec:
    m = cfg.model
    return get_model(m.process, water_stress=m.water_stress, mode=m.mode)


def resolve_fixed_parameters(
    cfg: FitConfig, process: AbstractDalec, streams: Any, *, burned_area: Any = None
) -> dict[str, float]:
    """Return the parameters a fit holds fixed, with their physical values.

    With ``model.free_parameters`` every other parameter is fixed (at the embedded
    default site's value or the table's midpoint, ``model.fixed_at``); otherwise, with
    ``model.fix_uninformed``, those that no stream informs
    (:func:`~.model.uninformed_parameters`). ``model.fixed_parameters`` is applied last.

    Parameters
    ----------
    cfg : FitConfig
        The configuration.
    process : AbstractDalec
        The process model.
    streams : iterable of str
        The fitted streams.
    burned_area : array_like, optional
        The forcing's burned area (fire parameters are inert without burning).

    Returns
    -------
    dict
        Name -> physical value, in table order.
    """
    m = cfg.model
    table = process.table
    fixed: dict[str, float] = {}
    if m.free_parameters:
        base = default_theta(process) if m.fixed_at == "default_site" else table.default
        fixed = {n: float(base[i]) for i, n in enumerate(table.names) if n not in m.free_parameters}
    elif m.fix_uninformed:
        fixed = uninformed_parameters(process, streams, burned_area=burned_area)
    fixed.update({k: float(v) for k, v in m.fixed_parameters.items()})
    return {n: fixed[n] for n in table.names if n in fixed}


def _init_strategy(values: Mapping[str, Any], site: dict | None = None) -> Any:
    """``init_to_value`` for ``values``; the prior median for every other latent."""
    if site is None:
        return partial(_init_strategy, values)
    if site["type"] == "sample" and not site["is_observed"] and site["name"] in values:
        return values[site["name"]]
    return init_to_median(site)


def _mask_sites(data: FitData, keep: np.ndarray) -> FitData:
    """Return the data with observations kept only at the sites where ``keep``."""
    k = jnp.asarray(keep)[:, None]
    streams = {
        name: StreamData(value=jnp.where(k, s.value, 0.0), mask=s.mask & k, unc=s.unc)
        for name, s in data.streams.items()
    }
    return data._replace(streams=streams)


def _holdout(n_sites: int, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of held-out sites: ``round(fraction * n)`` of them, at least one."""
    held = np.zeros(n_sites, dtype=bool)
    if fraction <= 0:
        return held
    if n_sites < 2:
        raise ValueError(
            f"data.holdout_fraction = {fraction}: needs at least 2 fitted sites, found {n_sites}"
        )
    n = min(max(round(fraction * n_sites), 1), n_sites - 1)
    held[np.random.default_rng(seed).choice(n_sites, size=n, replace=False)] = True
    return held


@dataclass(frozen=True, eq=False)
class FitProblem:
    """Everything :func:`~.svi.fit_svi` needs, built from a configuration and data.

    Attributes
    ----------
    process : AbstractDalec
        The process model.
    model_config : ModelConfig
        The hybrid model's configuration (fixed parameters resolved).
    net : EnvPriorNet
        The initial prior network.
    data : FitData
        All fitted sites; held-out sites' observations masked out.
    heldout_data : FitData or None
        All fitted sites with only the held-out sites' observations (None without).
    meta : FitMeta
        What the packed arrays mean.
    heldout : numpy.ndarray
        Boolean per site: held out for early stopping.
    fixed_parameters : dict
        Resolved fixed parameters.
    guide : numpyro.infer.autoguide.AutoGuide
        The guide.
    optimizer : optax.GradientTransformation
        The optimiser.
    model_kwargs : dict
        Keyword arguments of the model and guide.
    early_stopping : EarlyStopping or None
        Early stopping on the held-out sites.
    key : jax.Array
        PRNG key of SVI.
    """

    process: AbstractDalec
    model_config: ModelConfig
    net: EnvPriorNet
    data: FitData
    heldout_data: FitData | None
    meta: FitMeta
    heldout: np.ndarray
    fixed_parameters: dict[str, float]
    guide: Any
    optimizer: Any
    model_kwargs: dict[str, Any]
    early_stopping: EarlyStopping | None
    key: jax.Array

    @property
    def free_parameters(self) -> tuple[str, ...]:
        """Names of the estimated parameters."""
        return ParameterLayout(self.process.table, self.fixed_parameters).free_names


def build_problem(
    cfg: FitConfig, ds: xr.Dataset, process: AbstractDalec | None = None
) -> FitProblem:
    """Pack the data and build the model, network, guide and optimiser of a fit.

    Parameters
    ----------
    cfg : FitConfig
        The configuration.
    ds : xarray.Dataset
        The data (from :func:`load_dataset`).
    process : AbstractDalec, optional
        The process model; default built from ``cfg.model``.

    Returns
    -------
    FitProblem
        The pieces of the fit.

    Raises
    ------
    ValueError
        If the streams, parameters or data do not fit together.
    """
    if process is None:
        process = _process(cfg)
    d, s = cfg.data, cfg.svi
    full, meta = pack(
        ds, process, streams=list(d.streams) or None, split=d.split, spinup_steps=d.spinup_steps
    )
    n_sites = int(full.env.shape[0])
    fixed = resolve_fixed_parameters(
        cfg, process, full.streams, burned_area=getattr(full.forcing, "burned_area", None)
    )
    model_config = cfg.model_config(fixed)
    layout = ParameterLayout(process.table, fixed)
    log.info(
        "model: %s (%s, water stress %s); %d free parameter(s) %s, %d fixed",
        process.name, cfg.model.mode, cfg.model.water_stress, layout.n_free,
        list(layout.free_names), len(fixed),
    )  # fmt: skip

    root = jax.random.key(s.seed)
    k_net, k_svi = jax.random.split(root)
    net = init_prior_net(int(full.env.shape[1]), process, model_config, key=k_net)

    heldout = _holdout(n_sites, d.holdout_fraction, s.seed)
    data = _mask_sites(full, ~heldout) if heldout.any() else full
    heldout_data = _mask_sites(full, heldout) if heldout.any() else None
    n_train = {k: int(v.mask.sum()) for k, v in data.streams.items()}
    if sum(n_train.values()) == 0:
        raise ValueError("no training observation left after holding out sites")
    log.info(
        "sites: %d fitted (%d held out for early stopping); observations %s",
        n_sites, int(heldout.sum()), n_train,
    )  # fmt: skip

    batch = s.batch_size or None
    if batch is not None and batch >= n_sites:
        if batch > n_sites:
            log.warning("svi.batch_size %d > %d sites: using every site", batch, n_sites)
        batch = None
    guide = make_guide(
        hybrid_model,
        s.guide,
        local_sites=LOCAL_SITES,
        plate=LOCAL_PLATES,
        hidden_sites=DETERMINISTIC_SITES,
        rank=s.rank or None,
        init_scale=s.init_scale,
        init_loc_fn=_init_strategy(initial_values(net, model_config)),
    )
    optimizer = make_optimizer(
        s.lr,
        clip_norm=s.clip_norm or None,
        schedule=s.schedule,
        warmup_steps=s.warmup,
        total_steps=s.steps,
        end_lr_factor=s.end_lr_factor,
    )
    model_kwargs = {
        "process": process,
        "net": net,
        "config": model_config,
        "subsample_size": batch,
    }
    early = None
    if heldout_data is not None:
        e = s.early_stopping
        particles = e.num_particles or None
        if batch is not None and particles is None:
            # a guide keeps the site batch size it was built with, so the held-out loss
            # is estimated on random batches too; enough particles to see every site once
            # on average
            particles = max(math.ceil(n_sites / batch), s.num_particles)
        early = EarlyStopping(
            patience=e.patience,
            min_delta=e.min_delta,
            every=e.every,
            heldout_args=(heldout_data,),
            num_particles=particles,
        )
    return FitProblem(
        process=process,
        model_config=model_config,
        net=net,
        data=data,
        heldout_data=heldout_data,
        meta=meta,
        heldout=heldout,
        fixed_parameters=fixed,
        guide=guide,
        optimizer=optimizer,
        model_kwargs=model_kwargs,
        early_stopping=early,
        key=k_svi,
    )


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
        },
        "sites": sites,
        "train_sites": [s for s, h in zip(sites, held, strict=True) if not h],
        "heldout_sites": [s for s, h in zip(sites, held, strict=True) if h],
        "time": _iso(meta.time),
        "split": cfg.data.split,
        "spinup_steps": cfg.data.spinup_steps,
        "streams": list(meta.streams),
        "has_uncertainty": {k: bool(v) for k, v in problem.data.has_unc.items()},
        "n_obs": n_obs,
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
    try:
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


# --------------------------------------------------------------------------- reading back


@dataclass(frozen=True, eq=False)
class RestoredFit:
    """A run directory read back with its model rebuilt (:func:`restore_fit`).

    Attributes
    ----------
    run_dir : Path
        The run directory.
    config : FitConfig
        The configuration as run.
    meta : dict
        ``data_meta.json`` (sites, streams, env standardisation, fixed parameters).
    process : AbstractDalec
        The process model.
    model_config : ModelConfig
        The hybrid model's configuration (fixed parameters as resolved by the fit).
    net : EnvPriorNet
        The fitted network (point-estimated weights); with ``bayesian_weights`` the
        initial network, whose weights the guide's ``prior_net/...`` sites replace.
    params : dict
        The guide's parameters, the network param rebuilt as an :class:`EnvPriorNet`.
    losses : LossTrace
        Loss history.
    """

    run_dir: Path
    config: FitConfig
    meta: dict[str, Any]
    process: AbstractDalec
    model_config: ModelConfig
    net: EnvPriorNet
    params: dict[str, Any]
    losses: LossTrace


def restore_fit(run_dir: str | os.PathLike) -> RestoredFit:
    """Read a run directory and rebuild its process model, configuration and network.

    Parameters
    ----------
    run_dir : path-like
        A run directory written by :func:`run_fit`.

    Returns
    -------
    RestoredFit
        Everything needed to run the model with the fitted parameters (pack new data
        with ``pack(ds, process, env_spec=env_spec(meta))`` from :mod:`.run`).

    Raises
    ------
    FileNotFoundError
        If the run directory is missing or incomplete.
    ValueError
        If the stored network does not match the configuration.
    """
    run_dir = Path(run_dir)
    run = load_run(run_dir)
    cfg, meta = run.config, run.meta
    process = _process(cfg)
    model_config = cfg.model_config(meta["fixed_parameters"])
    k_net = jax.random.split(jax.random.key(cfg.svi.seed))[0]  # as build_problem
    template = init_prior_net(len(meta["features"]), process, model_config, key=k_net)
    name = f"{NET_NAME}$params"
    params = restore_params(run.params, {name: template})
    net = params.get(name, template)
    return RestoredFit(run_dir, cfg, meta, process, model_config, net, params, run.losses)
