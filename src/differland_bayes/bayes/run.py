"""The run directory of ``differland fit``: layout, atomic creation and reading back.

Layout of ``RUN_DIR``::

    RUN_DIR/
      config.toml          the configuration as run: every key, defaults filled in,
                           command-line overrides (--steps) applied
      data_meta.json       what the fitted arrays mean: data source, process model,
                           sites (all, training, held out), time axis, streams (with
                           uncertainty flags and observation counts), the predictor
                           selection ([data] predictors), the network's input columns
                           with their standardisation (mean, sd) and vegetation classes,
                           free parameters and the resolved fixed parameters
      params.npz           the guide's parameters as fitted (at the best held-out loss
                           with early stopping, else after the last step), network
                           weights included; see "params.npz" below
      losses.csv           step,loss: the ELBO loss of every step (NaN: a rejected step)
      heldout_losses.csv   step,loss: the held-out sites' loss at each early-stopping
                           evaluation (header only without held-out sites)
      map_losses.csv       step,loss of the MAP warm start (only with svi.map_steps > 0)
      summary.json         final loss, steps taken and requested, best step, whether
                           early stopping ended the fit, wall time, versions
      checkpoints/
        checkpoint.npz     the complete SVI state (see :mod:`.checkpoint`), from which
                           ``--resume`` continues bit for bit

**Atomic writes.** A fit works in a staging directory next to ``RUN_DIR``
(``.RUN_DIR-name.partial``) and moves it into place when everything is written, so
``RUN_DIR`` is either absent, the previous complete run, or the new complete run. An
existing ``RUN_DIR`` is refused unless ``overwrite`` (then it is replaced only once the
new run is complete) or ``resume``. An interrupted fit leaves its staging directory
(with the checkpoints written so far); ``resume`` continues it, ``overwrite`` discards
it. Resuming a complete run (to more steps) copies its checkpoints into a staging
directory and swaps the result in at the end.

**params.npz.** Array parameters are stored under their NumPyro names (e.g.
``eps_auto_loc``, ``sigma_auto_scale``). Pytree parameters (the point-estimated network
``prior_net$params``) are stored leaf by leaf as ``<name>/<key path>`` (e.g.
``prior_net$params/trunk[0].weight``), and the entry ``__trees__`` lists their names (a
JSON array). :func:`load_run` returns them as nested ``{key path: array}`` dicts;
:func:`restore_params` puts them back into a template (a freshly initialised network).
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import os
import secrets
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from .data import FitMeta
from .fitconfig import FitConfig, load_config
from .svi import CHECKPOINT_FILE

__all__ = [
    "CHECKPOINT_DIR",
    "CONFIG_FILE",
    "DATA_META_FILE",
    "HELDOUT_LOSSES_FILE",
    "LOSSES_FILE",
    "MAP_LOSSES_FILE",
    "PARAMS_FILE",
    "RUN_FILES",
    "SUMMARY_FILE",
    "LossTrace",
    "Run",
    "RunPlan",
    "discard_staging",
    "env_spec",
    "finalize_run",
    "flatten_params",
    "load_params",
    "load_run",
    "open_staging",
    "plan_run_dir",
    "read_losses",
    "read_summary",
    "restore_params",
    "save_params",
    "staging_path",
    "write_json",
    "write_losses",
]

log = logging.getLogger(__name__)

CONFIG_FILE = "config.toml"
DATA_META_FILE = "data_meta.json"
PARAMS_FILE = "params.npz"
LOSSES_FILE = "losses.csv"
HELDOUT_LOSSES_FILE = "heldout_losses.csv"
MAP_LOSSES_FILE = "map_losses.csv"  #: optional: the MAP warm start's losses
SUMMARY_FILE = "summary.json"
CHECKPOINT_DIR = "checkpoints"
#: every entry of a complete run directory
RUN_FILES: tuple[str, ...] = (
    CONFIG_FILE,
    DATA_META_FILE,
    PARAMS_FILE,
    LOSSES_FILE,
    HELDOUT_LOSSES_FILE,
    SUMMARY_FILE,
    CHECKPOINT_DIR,
)
_TREES_KEY = "__trees__"
_TREE_SEP = "/"


# --------------------------------------------------------------------------- run directory


def staging_path(run_dir: str | os.PathLike) -> Path:
    """Return the staging directory of a run: ``.<name>.partial`` next to it."""
    run_dir = Path(run_dir)
    return run_dir.parent / f".{run_dir.name}.partial"


@dataclass(frozen=True)
class RunPlan:
    """What a fit will do with its run directory (decided before any work).

    Attributes
    ----------
    run_dir : Path
        The final run directory.
    staging : Path
        Where the fit writes until it is complete.
    overwrite : bool
        Whether an existing ``run_dir`` will be replaced.
    resume_from : Path or None
        Directory whose ``checkpoints/`` the fit continues: the staging directory of an
        interrupted fit, or the complete ``run_dir``; None for a new fit.
    """

    run_dir: Path
    staging: Path
    overwrite: bool
    resume_from: Path | None

    @property
    def resume(self) -> bool:
        """Whether the fit continues from a checkpoint."""
        return self.resume_from is not None

    @property
    def previous_config(self) -> Path | None:
        """``config.toml`` of the run being continued, if there is one."""
        if self.resume_from is None:
            return None
        path = self.resume_from / CONFIG_FILE
        return path if path.is_file() else None


def plan_run_dir(
    run_dir: str | os.PathLike, *, overwrite: bool = False, resume: bool = False
) -> RunPlan:
    """Check that a fit may write ``run_dir`` and decide how; nothing is changed.

    Parameters
    ----------
    run_dir : path-like
        The run directory.
    overwrite : bool
        Replace an existing run (and discard an interrupted one).
    resume : bool
        Continue an interrupted fit (its staging directory) or a complete run.

    Returns
    -------
    RunPlan
        The plan.

    Raises
    ------
    ValueError
        If both ``overwrite`` and ``resume`` are set.
    FileExistsError
        If ``run_dir`` exists (or an interrupted fit of it does) and neither flag is set,
        or ``run_dir`` is not a directory.
    """
    if overwrite and resume:
        raise ValueError("--overwrite and --resume exclude each other: choose one")
    run_dir = Path(run_dir)
    staging = staging_path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise FileExistsError(f"run directory {run_dir} exists and is not a directory")
    if resume:
        if staging.is_dir() and (staging / CHECKPOINT_DIR / CHECKPOINT_FILE).is_file():
            log.info("resuming the interrupted fit in %s", staging)
            return RunPlan(run_dir, staging, overwrite=True, resume_from=staging)
        if run_dir.is_dir():
            if not (run_dir / CHECKPOINT_DIR / CHECKPOINT_FILE).is_file():
                raise FileNotFoundError(
                    f"cannot resume {run_dir}: no {CHECKPOINT_DIR}/{CHECKPOINT_FILE} in it"
                )
            return RunPlan(run_dir, staging, overwrite=True, resume_from=run_dir)
        log.info("--resume: no run at %s yet; starting a new fit", run_dir)
        return RunPlan(run_dir, staging, overwrite=False, resume_from=None)
    if run_dir.exists() and not overwrite:
        raise FileExistsError(
            f"run directory {run_dir} already exists; refusing to overwrite it (pass "
            "--overwrite to replace it, --resume to continue it, or choose another --out)"
        )
    if staging.exists() and not overwrite:
        raise FileExistsError(
            f"{staging} holds an interrupted fit of {run_dir}; pass --resume to continue it "
            "or --overwrite to start afresh"
        )
    return RunPlan(run_dir, staging, overwrite=overwrite, resume_from=None)


def open_staging(plan: RunPlan) -> Path:
    """Create the staging directory of a plan and return it.

    A new fit gets an empty directory (an interrupted one is discarded); resuming a
    complete run copies its ``checkpoints/`` there; resuming an interrupted fit uses its
    directory as it is.
    """
    staging = plan.staging
    if plan.resume_from == staging:
        return staging
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    if plan.resume_from is not None:
        shutil.copytree(plan.resume_from / CHECKPOINT_DIR, staging / CHECKPOINT_DIR)
    return staging


def discard_staging(plan: RunPlan) -> None:
    """Remove the staging directory unless it holds a checkpoint worth resuming."""
    staging = plan.staging
    if staging.is_dir() and not (staging / CHECKPOINT_DIR / CHECKPOINT_FILE).is_file():
        shutil.rmtree(staging, ignore_errors=True)


def finalize_run(plan: RunPlan) -> Path:
    """Move the complete staging directory into place as the run directory.

    An existing run directory (``overwrite`` or a resumed complete run) is moved aside
    first and removed after the new one is in place.

    Returns
    -------
    Path
        The run directory.

    Raises
    ------
    FileExistsError
        If the run directory appeared meanwhile and may not be replaced.
    """
    run_dir, staging = plan.run_dir, plan.staging
    missing = [name for name in RUN_FILES if not (staging / name).exists()]
    if missing:
        raise RuntimeError(f"staging directory {staging} is incomplete: missing {missing}")
    _fsync_tree(staging)
    old: Path | None = None
    if run_dir.exists():
        if not plan.overwrite:
            raise FileExistsError(
                f"run directory {run_dir} appeared while fitting; the new run is kept in {staging}"
            )
        old = run_dir.parent / f".{run_dir.name}.old-{secrets.token_hex(4)}"
        os.rename(run_dir, old)
    try:
        os.rename(staging, run_dir)
    except OSError:
        if old is not None:  # put the previous run back
            os.rename(old, run_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    log.info("run written to %s", run_dir)
    return run_dir


def _fsync_tree(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            with contextlib.suppress(OSError), open(path, "rb") as fh:
                os.fsync(fh.fileno())


# --------------------------------------------------------------------------- writers


def _jsonable(value: Any) -> Any:
    """Convert NumPy / JAX values to JSON types (non-finite floats become None)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, jax.Array | np.ndarray):
        return _jsonable(np.asarray(value).tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: str | os.PathLike, obj: Mapping[str, Any]) -> Path:
    """Write a mapping as indented JSON (NumPy values converted, NaN as null)."""
    path = Path(path)
    path.write_text(json.dumps(_jsonable(obj), indent=2) + "\n", encoding="utf-8")
    return path


def write_losses(
    path: str | os.PathLike, steps: Sequence[int] | np.ndarray, losses: Sequence[float]
) -> Path:
    """Write ``step,loss`` rows (losses with 17 significant digits, exact for float64)."""
    path = Path(path)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["step", "loss"])
        for s, x in zip(steps, losses, strict=True):
            w.writerow([int(s), repr(float(x))])
    return path


def read_losses(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a file of :func:`write_losses`; return ``(steps, losses)``."""
    steps: list[int] = []
    losses: list[float] = []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header != ["step", "loss"]:
            raise ValueError(f"{path}: expected the header 'step,loss', found {header}")
        for row in reader:
            steps.append(int(row[0]))
            losses.append(float(row[1]))
    return np.asarray(steps, dtype=np.int64), np.asarray(losses, dtype=np.float64)


def _is_array(x: Any) -> bool:
    return isinstance(x, jax.Array | np.ndarray | np.generic)


def flatten_params(params: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], list[str]]:
    """Flatten guide parameters into named host arrays.

    Parameters
    ----------
    params : mapping
        ``svi.get_params(state)``: arrays, or pytrees such as an Equinox module.

    Returns
    -------
    arrays : dict of str to numpy.ndarray
        Array parameters under their names; pytree leaves as ``<name>/<key path>``.
    trees : list of str
        Names of the pytree parameters.
    """
    arrays: dict[str, np.ndarray] = {}
    trees: list[str] = []
    for name, value in params.items():
        if _is_array(value):
            arrays[name] = np.asarray(jax.device_get(value))
            continue
        trees.append(name)
        for path, leaf in jax.tree_util.tree_flatten_with_path(value)[0]:
            if _is_array(leaf):
                key = jax.tree_util.keystr(path).lstrip(".")
                arrays[f"{name}{_TREE_SEP}{key}"] = np.asarray(jax.device_get(leaf))
    return arrays, trees


def save_params(path: str | os.PathLike, params: Mapping[str, Any]) -> Path:
    """Write guide parameters to an ``.npz`` file (layout: module docstring)."""
    path = Path(path)
    arrays, trees = flatten_params(params)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays, **{_TREES_KEY: np.asarray(json.dumps(trees))})
    return path


def load_params(path: str | os.PathLike) -> dict[str, Any]:
    """Read a file of :func:`save_params`.

    Returns
    -------
    dict
        Array parameters as arrays; each pytree parameter as a dict
        ``{key path: array}`` (see :func:`restore_params`).
    """
    with np.load(path, allow_pickle=False) as z:
        trees = json.loads(str(z[_TREES_KEY])) if _TREES_KEY in z.files else []
        out: dict[str, Any] = {name: {} for name in trees}
        for key in z.files:
            if key == _TREES_KEY:
                continue
            name, _, leaf = key.partition(_TREE_SEP)
            if name in out and leaf:
                out[name][leaf] = z[key]
            else:
                out[key] = z[key]
    return out


def restore_params(params: Mapping[str, Any], templates: Mapping[str, Any]) -> dict[str, Any]:
    """Put stored pytree parameters back into their structures.

    Parameters
    ----------
    params : mapping
        From :func:`load_params` / :func:`load_run`.
    templates : mapping of str to pytree
        For each pytree parameter, a pytree of the same structure (e.g. the network of
        :func:`~differland_bayes.bayes.init_prior_net` built from the run's configuration
        and ``data_meta.json``); its array leaves are replaced by the stored ones.

    Returns
    -------
    dict
        The parameters, pytrees rebuilt (as JAX arrays).

    Raises
    ------
    ValueError
        If a stored tree does not match its template (missing leaves or shapes).
    """
    out = dict(params)
    for name, template in templates.items():
        stored = params.get(name)
        if not isinstance(stored, Mapping):
            continue
        leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
        new, used = [], set()
        for path, leaf in leaves:
            key = jax.tree_util.keystr(path).lstrip(".")
            if not _is_array(leaf):
                new.append(leaf)
                continue
            if key not in stored:
                raise ValueError(f"{name}: stored parameters lack {key!r}")
            value = np.asarray(stored[key])
            if value.shape != np.shape(leaf):
                raise ValueError(
                    f"{name}/{key}: stored shape {value.shape} differs from the template's "
                    f"{np.shape(leaf)}"
                )
            new.append(jax.numpy.asarray(value, dtype=jax.numpy.asarray(leaf).dtype))
            used.add(key)
        extra = sorted(set(stored) - used)
        if extra:
            raise ValueError(f"{name}: stored leaves {extra} are not in the template")
        out[name] = jax.tree_util.tree_unflatten(treedef, new)
    return out


# --------------------------------------------------------------------------- reading


class LossTrace(NamedTuple):
    """The loss history of a run."""

    loss: np.ndarray  #: ELBO loss of every step (index 0 = step 1)
    heldout_steps: np.ndarray  #: steps of the held-out evaluations
    heldout_loss: np.ndarray  #: held-out loss at those steps


class Run(NamedTuple):
    """A run directory read back by :func:`load_run`."""

    config: FitConfig  #: the configuration as run
    meta: dict[str, Any]  #: ``data_meta.json``
    params: dict[str, Any]  #: ``params.npz`` (pytrees as ``{key path: array}`` dicts)
    losses: LossTrace  #: ``losses.csv`` and ``heldout_losses.csv``


def _require_run(run_dir: Path) -> None:
    if not run_dir.is_dir():
        staging = staging_path(run_dir)
        hint = (
            f" (an interrupted fit is in {staging}; finish it with --resume)"
            if staging.is_dir()
            else ""
        )
        raise FileNotFoundError(f"run directory not found: {run_dir}{hint}")
    missing = [n for n in RUN_FILES if not (run_dir / n).exists()]
    if missing:
        raise FileNotFoundError(f"{run_dir} is not a complete run directory: missing {missing}")


def load_run(run_dir: str | os.PathLike) -> Run:
    """Read a run directory written by ``differland fit``.

    Parameters
    ----------
    run_dir : path-like
        The run directory.

    Returns
    -------
    Run
        ``(config, meta, params, losses)``.

    Raises
    ------
    FileNotFoundError
        If the directory or one of its files is missing.
    """
    run_dir = Path(run_dir)
    _require_run(run_dir)
    config = load_config(run_dir / CONFIG_FILE)
    meta = json.loads((run_dir / DATA_META_FILE).read_text(encoding="utf-8"))
    params = load_params(run_dir / PARAMS_FILE)
    _, loss = read_losses(run_dir / LOSSES_FILE)
    h_steps, h_loss = read_losses(run_dir / HELDOUT_LOSSES_FILE)
    return Run(config, meta, params, LossTrace(loss, h_steps, h_loss))


def read_summary(run_dir: str | os.PathLike) -> dict[str, Any]:
    """Read ``summary.json`` of a run directory."""
    path = Path(run_dir) / SUMMARY_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {SUMMARY_FILE} in {run_dir}")
    return json.loads(path.read_text(encoding="utf-8"))


def env_spec(meta: Mapping[str, Any]) -> FitMeta:
    """Return the predictor encoding of a run, for ``pack(..., env_spec=...)`` of new sites.

    Parameters
    ----------
    meta : mapping
        ``data_meta.json`` of the run.

    Returns
    -------
    FitMeta
        Predictor selection, features, standardisation and classes of the fitted sites
        (sites and time as in the run). Runs written before ``[data] predictors``
        existed used every predictor (an empty selection).
    """
    return FitMeta(
        sites=np.asarray(meta["sites"]),
        time=np.asarray(meta["time"], dtype="datetime64[ns]"),
        features=list(meta["features"]),
        env_mean=np.asarray(meta["env_mean"], dtype=np.float64),
        env_sd=np.asarray(meta["env_sd"], dtype=np.float64),
        streams=list(meta["streams"]),
        classes=list(meta["classes"]),
        predictors=list(meta.get("predictors", [])),
    )
