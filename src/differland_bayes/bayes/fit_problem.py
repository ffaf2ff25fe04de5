"""The pieces of a fit built from a configuration and data (:func:`build_problem`).

Packs the data, resolves the fixed parameters, builds the prior network, holds out
sites for early stopping and constructs the guide and the optimiser.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from numpyro.infer import init_to_median

from ..defaults import default_theta
from ..process.base import AbstractDalec
from .config import ModelConfig
from .data import FitData, FitMeta, StreamData, pack
from .fit_data import _process
from .fitconfig import FitConfig
from .guides import make_guide
from .hybrid_process import is_hybrid, n_process_weights, with_forcing_constants
from .model import (
    DETERMINISTIC_SITES,
    LOCAL_PLATES,
    LOCAL_SITES,
    ParameterLayout,
    hybrid_model,
    init_prior_net,
    initial_values,
    uninformed_parameters,
)
from .optim import make_optimizer
from .prior_net import EnvPriorNet
from .svi import EarlyStopping

__all__ = ["FitProblem", "build_problem", "resolve_fixed_parameters"]

log = logging.getLogger(__name__)


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


def _keep_observations(data: FitData, keep: np.ndarray) -> FitData:
    """Return the data with observations kept only where ``keep``.

    ``keep`` is ``(site,)`` (whole sites) or ``(site, time)`` on the observation steps.
    """
    k = jnp.asarray(keep)
    k = k[:, None] if k.ndim == 1 else k
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


def _holdout_steps(data: FitData, fraction: float) -> np.ndarray:
    """``(site, time)`` mask of held-out observation steps: each site's last ones.

    Per site, the steps at which any stream is observed are counted and the last
    ``round(fraction * n)`` of them (at least one when the site has two or more) are held
    out, every stream from the first held-out step on.
    """
    masks = [np.asarray(s.mask, bool) for s in data.streams.values()]
    shapes = {m.shape for m in masks}
    if len(shapes) != 1:
        raise ValueError(
            "data.holdout = 'months': expected every stream on the same observation steps, "
            f"found shapes {sorted(shapes)}"
        )
    observed = np.logical_or.reduce(masks)
    held = np.zeros_like(observed)
    for i, row in enumerate(observed):
        steps = np.flatnonzero(row)
        if len(steps) < 2:
            continue
        n = min(max(round(fraction * len(steps)), 1), len(steps) - 1)
        held[i, steps[-n] :] = True
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


def problem_guide(cfg: FitConfig, values: Mapping[str, Any]) -> Any:
    """Build the guide ``cfg.svi`` asks for, started at ``values`` (others: prior median).

    Parameters
    ----------
    cfg : FitConfig
        The configuration (``svi.guide``, ``svi.rank``, ``svi.init_scale``).
    values : mapping
        Initial (constrained) values of latent sites that are not subsampled, e.g.
        :func:`~.model.initial_values` or the point of a MAP warm start.
    """
    s = cfg.svi
    return make_guide(
        hybrid_model,
        s.guide,
        local_sites=LOCAL_SITES,
        plate=LOCAL_PLATES,
        hidden_sites=DETERMINISTIC_SITES,
        rank=s.rank or None,
        init_scale=s.init_scale,
        init_loc_fn=_init_strategy(values),
    )


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
        ds,
        process,
        streams=list(d.streams) or None,
        split=d.split,
        spinup_steps=d.spinup_steps,
        observation_step=d.observation_step,
        predictors=list(d.predictors),
    )
    for name, why in (("discrepancy", "a discrepancy needs observations"),
                      ("relative_noise", "noise applies to observed streams")):  # fmt: skip
        missing = [k for k in getattr(cfg.likelihood, name) if k not in full.streams]
        if missing:
            raise ValueError(
                f"likelihood.{name}: expected streams of the fit {list(full.streams)}, "
                f"found {missing} ({why})"
            )
    if cfg.model.water_stress == "nn_whole":
        # the network's inputs are standardised with the fitted sites' forcing
        process = with_forcing_constants(process, full.forcing)
    n_sites = int(full.env.shape[0])
    fixed = resolve_fixed_parameters(
        cfg, process, full.streams, burned_area=getattr(full.forcing, "burned_area", None)
    )
    model_config = cfg.model_config(fixed)
    layout = ParameterLayout.for_config(process.table, model_config)
    log.info(
        "model: %s (%s, water stress %s); %d free parameter(s) %s, %d fixed",
        process.name, cfg.model.mode, cfg.model.water_stress, layout.n_free,
        list(layout.free_names), len(fixed),
    )  # fmt: skip
    if is_hybrid(process):
        log.info(
            "hybrid process network (%s): %d weight(s), %s",
            cfg.model.water_stress, n_process_weights(process),
            "random variables" if model_config.network.bayesian_weights else "point estimates",
        )  # fmt: skip

    root = jax.random.key(s.seed)
    k_net, k_svi = jax.random.split(root)
    net = init_prior_net(int(full.env.shape[1]), process, model_config, key=k_net)

    if d.holdout == "months":
        heldout = np.zeros(n_sites, dtype=bool)  # no whole site is held out
        held = _holdout_steps(full, d.holdout_fraction) if d.holdout_fraction > 0 else heldout
    else:
        heldout = held = _holdout(n_sites, d.holdout_fraction, s.seed)
    if held.any():
        data, heldout_data = _keep_observations(full, ~held), _keep_observations(full, held)
    else:
        data, heldout_data = full, None
    n_train = {k: int(v.mask.sum()) for k, v in data.streams.items()}
    if sum(n_train.values()) == 0:
        raise ValueError(f"no training observation left after holding out {d.holdout}")
    n_held = {k: int(v.mask.sum()) for k, v in heldout_data.streams.items()} if heldout_data else {}
    log.info(
        "sites: %d fitted (%d held out for early stopping); observations %s, held out "
        "for early stopping %s (data.holdout = %r)",
        n_sites, int(heldout.sum()), n_train, n_held or 0, d.holdout,
    )  # fmt: skip

    batch = s.batch_size or None
    if batch is not None and batch >= n_sites:
        if batch > n_sites:
            log.warning("svi.batch_size %d > %d sites: using every site", batch, n_sites)
        batch = None
    guide = problem_guide(cfg, initial_values(net, model_config, process))
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
