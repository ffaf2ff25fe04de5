"""Read a fit's run directory back with its model rebuilt (:func:`restore_fit`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax

from ..process.base import AbstractDalec
from .config import ModelConfig
from .fit_data import _process
from .fitconfig import FitConfig
from .model import (
    NET_NAME,
    init_prior_net,
)
from .prior_net import EnvPriorNet
from .run import (
    LossTrace,
    load_run,
    restore_params,
)

__all__ = ["RestoredFit", "restore_fit"]


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
