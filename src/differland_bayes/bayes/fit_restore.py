"""Read a fit's run directory back with its model rebuilt (:func:`restore_fit`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax

from ..process.base import AbstractDalec
from .config import ModelConfig
from .fitconfig import FitConfig
from .hybrid_process import (
    build_process,
    is_hybrid,
    n_process_weights,
    process_from_params,
    process_weights,
)
from .model import (
    NET_NAME,
    PROCESS_NN_NAME,
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
        The process model. A hybrid option (``model.water_stress = "nn_paw"`` /
        ``"nn_whole"``) with point-estimated weights has its fitted weights; with
        ``bayesian_weights`` it has its initial weights, which the guide's
        ``process_nn/...`` draws replace.
    model_config : ModelConfig
        The hybrid model's configuration (fixed parameters as resolved by the fit).
    net : EnvPriorNet
        The fitted network (point-estimated weights); with ``bayesian_weights`` the
        initial network, whose weights the guide's ``prior_net/...`` sites replace.
    params : dict
        The guide's parameters, the network param rebuilt as an :class:`EnvPriorNet`
        (and a hybrid process model's ``process_nn$params`` as its trainable arrays).
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
        If the stored network or process-network weights do not match the
        configuration, or an ``nn_whole`` run lacks its standardisation constants.
    """
    run_dir = Path(run_dir)
    run = load_run(run_dir)
    cfg, meta = run.config, run.meta
    process = _restore_process(cfg, meta.get("process", {}))
    model_config = cfg.model_config(meta["fixed_parameters"])
    k_net = jax.random.split(jax.random.key(cfg.svi.seed))[0]  # as build_problem
    template = init_prior_net(len(meta["features"]), process, model_config, key=k_net)
    name = f"{NET_NAME}$params"
    templates: dict[str, Any] = {name: template}
    if is_hybrid(process):
        templates[f"{PROCESS_NN_NAME}$params"] = process_weights(process)
    params = restore_params(run.params, templates)
    net = params.get(name, template)
    if not model_config.network.bayesian_weights:
        process = process_from_params(process, params)
    return RestoredFit(run_dir, cfg, meta, process, model_config, net, params, run.losses)


def _restore_process(cfg: FitConfig, recorded: dict[str, Any]) -> AbstractDalec:
    """Rebuild the run's process model (hybrid networks at their initial weights)."""
    m = cfg.model
    constants = recorded.get("nn_constants")
    if m.water_stress == "nn_whole" and constants is None:
        raise ValueError(
            "data_meta.json: process.nn_constants: expected the standardisation constants "
            "of the nn_whole network (written by differland fit), found none"
        )
    process = build_process(
        m.process, water_stress=m.water_stress, mode=m.mode, seed=cfg.svi.seed,
        constants=constants,
    )  # fmt: skip
    expected = recorded.get("nn_weights", 0)
    found = n_process_weights(process)
    if expected != found:
        raise ValueError(
            f"data_meta.json: process.nn_weights: the run recorded {expected} process-network "
            f"weight(s), but model.water_stress = {m.water_stress!r} builds {found}"
        )
    return process
