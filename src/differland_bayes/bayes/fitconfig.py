"""The configuration of ``differland fit``: a TOML schema, validated before anything runs.

A fit is described by one TOML file with the sections below. Every key is optional;
missing keys take the defaults defined here (the one place where they live: the
dataclass fields of this module, which in turn take the model's defaults from
:mod:`.config`). :func:`load_config` / :func:`config_from_dict` check the whole file
and report **every** problem at once, each with its key path::

    svi.steps: expected int, found str ('300')
    svi.guide: expected one of 'normal', 'lowrank', 'delta', found 'iaf'
    network.hiden: unknown key (did you mean 'hidden'?)

:func:`config_to_toml` writes a configuration back (the run directory keeps the
configuration as run; ``comments=True`` documents every key, which is what
``differland fit --show-config`` prints). TOML has no null, so "not set" is spelt
``0`` or an empty array where a key is optional (``svi.batch_size = 0``: every site in
every step; ``data.streams = []``: every stream the model can predict).

Schema (defaults in brackets)
-----------------------------
``[data]``
    ``source`` ["synthetic"]: ``"synthetic"`` (generated from ``[data.synthetic]``),
    ``"fluxval"`` (CARDAMOM-FluxVal, ``cardamom-fluxval/fluxval_monthly.nc``),
    ``"fluxnet-sites"`` (the daily FLUXNET site folder), or the path of a canonical
    ``.nc`` / ``.zarr`` dataset. Relative paths are resolved against the data folder,
    ``$DIFFERLAND_DATA_DIR`` (default ``../shared/data``). ``streams`` [[]: all the
    model predicts], ``split`` [1: fit observations with ``split_time == 1``],
    ``site_split`` ["train": sites whose ``split_site`` is ``train``; ``"all"``],
    ``sites`` [[]: all], ``spinup_steps`` [0], ``holdout_fraction`` [0.0: fraction of the
    training sites held out for early stopping], ``period`` ["common"; fluxnet-sites].
``[data.synthetic]``
    ``sites`` [32], ``years`` [4], ``seed`` [0], ``free_parameters`` [[]: all of the
    relationship's], ``streams`` [[]: gpp nee et lai], ``gap_fraction`` [0.3].
``[model]``
    ``process`` ["dalec993"], ``mode`` ["faithful"], ``water_stress`` ["default"],
    ``fix_uninformed`` [true: hold parameters no stream informs at their defaults],
    ``free_parameters`` [[]: if set, every other parameter is held fixed],
    ``fixed_at`` ["default_site"], ``fixed_parameters`` [{}: name = physical value].
``[network]``
    ``hidden`` [[32, 32, 32]], ``activation``, ``negative_slope``, ``bayesian_weights``,
    ``weight_prior_scale``, ``bias_prior_scale``, ``predict_scale``, ``scale_floor``.
``[likelihood]``
    ``family`` ["normal"], ``df`` [4.0], ``use_data_uncertainty`` [true],
    ``add_learned_noise`` [false], ``noise_prior_scale`` [{}: stream = scale],
    ``default_noise_prior_scale`` [1.0].
``[prior]``
    ``sigma_prior_scale`` [0.3], ``sigma_prior_log_sd`` [1.0], ``sigma_floor`` [0.0],
    ``edc_scale`` [0.0: off].
``[svi]``
    ``guide`` ["normal"], ``rank`` [0], ``init_scale`` [0.1], ``loss`` ["trace"],
    ``steps`` [2000], ``batch_size`` [0], ``lr`` [0.01], ``clip_norm`` [10.0; 0 off],
    ``schedule`` ["cosine"], ``warmup`` [0], ``end_lr_factor`` [0.01],
    ``num_particles`` [1], ``seed`` [0], ``checkpoint_every`` [500], ``log_every`` [0].
``[svi.early_stopping]`` (used when ``data.holdout_fraction > 0``)
    ``every`` [100], ``patience`` [10], ``min_delta`` [0.0], ``num_particles`` [0].
``[output]``
    ``posterior_samples`` [200].
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import re
import textwrap
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from ..dataset import STREAMS
from ..process.base import MODES
from ..process.registry import MODELS, WATER_STRESS
from .config import ACTIVATIONS, FAMILIES, FrozenMap, LikelihoodConfig, ModelConfig, NetworkConfig
from .svi import GUIDE_KINDS, LOSS_KINDS, SCHEDULES

__all__ = [
    "DATA_SOURCES",
    "ConfigError",
    "DataConfig",
    "EarlyStoppingConfig",
    "FitConfig",
    "LikelihoodSection",
    "ModelSection",
    "NetworkSection",
    "OutputConfig",
    "PriorSection",
    "SVIConfig",
    "SyntheticConfig",
    "config_from_dict",
    "config_to_dict",
    "config_to_toml",
    "config_with",
    "load_config",
]

#: named data sources (anything else must be a ``.nc`` / ``.zarr`` path)
DATA_SOURCES: tuple[str, ...] = ("synthetic", "fluxval", "fluxnet-sites")
#: accepted suffixes of a canonical dataset path
DATASET_SUFFIXES: tuple[str, ...] = (".nc", ".nc4", ".zarr")
#: values of ``data.site_split``
SITE_SPLITS: tuple[str, ...] = ("train", "validation", "test", "all")
#: values of ``model.fixed_at``
FIXED_AT: tuple[str, ...] = ("default_site", "table")

#: a value check: None if fine, else a message ("expected ..."), or (sub-path, message,
#: offending value) for a problem with one item of an array
Check = Callable[[Any], "str | tuple[str, str, Any] | None"]


# --------------------------------------------------------------------------- constraints


def _choices(*allowed: str) -> Check:
    def check(v: Any) -> str | None:
        if v in allowed:
            return None
        return "expected one of " + ", ".join(repr(a) for a in allowed)

    return check


def _range(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
           hi_open: bool = False, kind: str = "a number") -> Check:  # fmt: skip
    def check(v: Any) -> str | None:
        bad = (lo is not None and (v <= lo if lo_open else v < lo)) or (
            hi is not None and (v >= hi if hi_open else v > hi)
        )
        if not bad:
            return None
        parts = []
        if lo is not None:
            parts.append(f"{'>' if lo_open else '>='} {lo:g}")
        if hi is not None:
            parts.append(f"{'<' if hi_open else '<='} {hi:g}")
        return f"expected {kind} " + " and ".join(parts)

    return check


def _items(check: Check) -> Check:
    def inner(v: Any) -> tuple[str, str, Any] | None:
        for i, item in enumerate(v):
            msg = check(item)
            if msg:
                return f"[{i}]", str(msg), item
        return None

    return inner


def _unique(v: Any) -> str | None:
    dupes = sorted({x for x in v if list(v).count(x) > 1})
    return f"expected distinct values, found {dupes} more than once" if dupes else None


def _all(*checks: Check) -> Check:
    def inner(v: Any) -> str | tuple[str, str, Any] | None:
        for c in checks:
            msg = c(v)
            if msg:
                return msg
        return None

    return inner


_STREAM = _choices(*STREAMS)
_POSITIVE = _range(0, lo_open=True, kind="a number")
_NON_NEGATIVE = _range(0, kind="a number")
_POS_INT = _range(1, kind="an integer")
_NON_NEG_INT = _range(0, kind="an integer")


def _f(default: Any, doc: str, check: Check | None = None) -> Any:
    """Declare a schema field: default, documentation and an optional value check."""
    meta = {"doc": doc, "check": check}
    if isinstance(default, Mapping):
        return field(default_factory=lambda: FrozenMap(default), metadata=meta)
    if isinstance(default, type):  # a section
        return field(default_factory=default, metadata=meta)
    return field(default=default, metadata=meta)


# --------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class SyntheticConfig:
    """``[data.synthetic]``: the synthetic world of ``data.source = "synthetic"``."""

    sites: int = _f(32, "number of sites", _POS_INT)
    years: int = _f(4, "calendar years simulated (from 2001)", _POS_INT)
    seed: int = _f(0, "seed of the world (same seed, same data)", _NON_NEG_INT)
    free_parameters: tuple[str, ...] = _f(
        (), "parameters whose truth varies with the environment; [] = all of them", _unique
    )
    streams: tuple[str, ...] = _f(
        (), "streams generated; [] = gpp nee et lai", _all(_items(_STREAM), _unique)
    )
    gap_fraction: float = _f(0.3, "target fraction of missing observations", _range(0, 0.95))


@dataclass(frozen=True)
class DataConfig:
    """``[data]``: where the observations come from and which of them are fitted."""

    source: str = _f(
        "synthetic",
        "'synthetic', 'fluxval', 'fluxnet-sites' or the path of a canonical .nc/.zarr "
        "dataset (relative paths: against $DIFFERLAND_DATA_DIR, default ../shared/data)",
    )
    streams: tuple[str, ...] = _f(
        (), "streams fitted; [] = every stream present that the model predicts",
        _all(_items(_STREAM), _unique),
    )  # fmt: skip
    split: int = _f(
        1,
        "fit the observations with split_time == split (1 = training)",
        _range(0, 2, kind="an integer"),
    )
    site_split: str = _f(
        "train", "sites fitted: those whose split_site is this value, or 'all'",
        _choices(*SITE_SPLITS),
    )  # fmt: skip
    sites: tuple[str, ...] = _f((), "only these site ids; [] = all", _unique)
    spinup_steps: int = _f(0, "initial model steps whose observations are ignored", _NON_NEG_INT)
    holdout_fraction: float = _f(
        0.0,
        "fraction of the fitted sites held out for early stopping (0 = no early stopping)",
        _range(0, 1, hi_open=True),
    )
    period: str = _f(
        "common",
        "fluxnet-sites only: time axis 'common' (days all chosen sites share) or 'union'",
        _choices("common", "union"),
    )
    synthetic: SyntheticConfig = _f(SyntheticConfig, "synthetic world")


@dataclass(frozen=True)
class ModelSection:
    """``[model]``: the process model and which of its parameters are estimated."""

    process: str = _f("dalec993", "process model", _choices(*MODELS))
    mode: str = _f("faithful", "numerics of the process model", _choices(*MODES))
    water_stress: str = _f("default", "water-stress option of the process model")
    fix_uninformed: bool = _f(
        True, "hold the parameters that no fitted stream informs at their defaults"
    )
    free_parameters: tuple[str, ...] = _f(
        (), "if set, estimate only these parameters and hold every other one fixed", _unique
    )
    fixed_at: str = _f(
        "default_site",
        "values of parameters held fixed by free_parameters: 'default_site' (the embedded "
        "default site) or 'table' (geometric mean of the bounds)",
        _choices(*FIXED_AT),
    )
    fixed_parameters: Mapping[str, float] = _f(
        {}, "parameters held at these physical values (name = value); override the above"
    )


_NET = NetworkConfig()
_LIK = LikelihoodConfig()
_MOD = ModelConfig()


@dataclass(frozen=True)
class NetworkSection:
    """``[network]``: the environment -> parameter prior network."""

    hidden: tuple[int, ...] = _f(
        _NET.hidden, "widths of the hidden layers ([] = linear)", _items(_POS_INT)
    )
    activation: str = _f(_NET.activation, "activation", _choices(*ACTIVATIONS))
    negative_slope: float = _f(_NET.negative_slope, "slope of leaky_relu below 0", _NON_NEGATIVE)
    bayesian_weights: bool = _f(
        _NET.bayesian_weights, "weights as latent variables (true) or point estimates"
    )
    weight_prior_scale: float = _f(
        _NET.weight_prior_scale, "weight prior sd times sqrt(fan_in)", _POSITIVE
    )
    bias_prior_scale: float = _f(_NET.bias_prior_scale, "bias prior sd", _POSITIVE)
    predict_scale: bool = _f(
        _MOD.predict_scale, "also predict a per-site multiplier of the residual sd"
    )
    scale_floor: float = _f(
        _NET.scale_floor, "lower bound of that multiplier", _range(0, 1, lo_open=True, hi_open=True)
    )


@dataclass(frozen=True)
class LikelihoodSection:
    """``[likelihood]``: the observation model of every stream."""

    family: str = _f(_LIK.family, "distribution of the observations", _choices(*FAMILIES))
    df: float = _f(_LIK.df, "degrees of freedom of student_t", _POSITIVE)
    use_data_uncertainty: bool = _f(
        _LIK.use_data_uncertainty, "use <stream>_unc as the noise sd where the data have it"
    )
    add_learned_noise: bool = _f(
        _LIK.add_learned_noise, "with data uncertainty, also learn a per-stream noise sd"
    )
    noise_prior_scale: Mapping[str, float] = _f(
        {}, "scale of the HalfNormal prior of a learned noise sd, per stream (stream = scale)"
    )
    default_noise_prior_scale: float = _f(
        _LIK.default_noise_prior_scale, "that scale for streams without a default", _POSITIVE
    )


@dataclass(frozen=True)
class PriorSection:
    """``[prior]``: the hierarchy's priors and the optional EDC potential."""

    sigma_prior_scale: float = _f(
        _MOD.sigma_prior_scale, "median of the LogNormal prior of sigma (z units)", _POSITIVE
    )
    sigma_prior_log_sd: float = _f(_MOD.sigma_prior_log_sd, "log-scale sd of it", _POSITIVE)
    sigma_floor: float = _f(_MOD.sigma_floor, "constant added to sigma", _NON_NEGATIVE)
    edc_scale: float = _f(0.0, "weight of the steady-state EDC potential (0 = off)", _NON_NEGATIVE)


@dataclass(frozen=True)
class EarlyStoppingConfig:
    """``[svi.early_stopping]``: stop on the held-out sites' loss."""

    every: int = _f(100, "evaluate the held-out loss every this many steps", _POS_INT)
    patience: int = _f(10, "evaluations without improvement before stopping", _POS_INT)
    min_delta: float = _f(0.0, "improvement that resets the patience", _NON_NEGATIVE)
    num_particles: int = _f(
        0,
        "particles of the held-out ELBO (0 = svi.num_particles; with svi.batch_size, where "
        "the held-out loss is estimated on random site batches, enough to cover every site "
        "once on average)",
        _NON_NEG_INT,
    )


@dataclass(frozen=True)
class SVIConfig:
    """``[svi]``: guide, optimiser and schedule of stochastic variational inference."""

    guide: str = _f("normal", "variational family", _choices(*GUIDE_KINDS))
    rank: int = _f(0, "rank of the lowrank guide (0 = NumPyro's default)", _NON_NEG_INT)
    init_scale: float = _f(0.1, "initial posterior scale of the guide", _POSITIVE)
    loss: str = _f("trace", "ELBO estimator", _choices(*LOSS_KINDS))
    steps: int = _f(2000, "total optimisation steps", _POS_INT)
    batch_size: int = _f(0, "sites per step (0 = all)", _NON_NEG_INT)
    lr: float = _f(0.01, "peak learning rate", _POSITIVE)
    clip_norm: float = _f(10.0, "clip gradients to this global norm (0 = off)", _NON_NEGATIVE)
    schedule: str = _f("cosine", "learning-rate schedule after warm-up", _choices(*SCHEDULES))
    warmup: int = _f(0, "linear warm-up steps", _NON_NEG_INT)
    end_lr_factor: float = _f(
        0.01, "final rate / lr for decaying schedules", _range(0, 1, lo_open=True)
    )
    num_particles: int = _f(1, "particles per ELBO estimate", _POS_INT)
    seed: int = _f(0, "seed of the network, the held-out sites and SVI", _NON_NEG_INT)
    checkpoint_every: int = _f(500, "checkpoint period in steps (0 = at the end only)",
                               _NON_NEG_INT)  # fmt: skip
    log_every: int = _f(0, "log the loss every this many steps (0 = steps / 10)", _NON_NEG_INT)
    early_stopping: EarlyStoppingConfig = _f(EarlyStoppingConfig, "early stopping")


@dataclass(frozen=True)
class OutputConfig:
    """``[output]``: what is made from the fit afterwards."""

    posterior_samples: int = _f(200, "posterior draws for predictions and reports", _POS_INT)


@dataclass(frozen=True)
class FitConfig:
    """The whole configuration of a fit (one field per TOML section)."""

    data: DataConfig = _f(DataConfig, "data source and selection")
    model: ModelSection = _f(ModelSection, "process model and its parameters")
    network: NetworkSection = _f(NetworkSection, "prior network")
    likelihood: LikelihoodSection = _f(LikelihoodSection, "observation model")
    prior: PriorSection = _f(PriorSection, "priors of the hierarchy")
    svi: SVIConfig = _f(SVIConfig, "variational inference")
    output: OutputConfig = _f(OutputConfig, "outputs")

    def model_config(self, fixed_parameters: Mapping[str, float]) -> ModelConfig:
        """Build the :class:`~.config.ModelConfig` of this fit.

        Parameters
        ----------
        fixed_parameters : mapping of str to float
            The resolved fixed parameters (``model.fixed_parameters`` plus those fixed by
            ``fix_uninformed`` / ``free_parameters``; see
            :func:`~differland_bayes.bayes.fit.resolve_fixed_parameters`).

        Returns
        -------
        ModelConfig
            The validated model configuration.
        """
        n, lk, pr = self.network, self.likelihood, self.prior
        return ModelConfig(
            network=NetworkConfig(
                hidden=tuple(n.hidden),
                activation=n.activation,
                negative_slope=n.negative_slope,
                bayesian_weights=n.bayesian_weights,
                weight_prior_scale=n.weight_prior_scale,
                bias_prior_scale=n.bias_prior_scale,
                scale_floor=n.scale_floor,
            ),
            likelihood=LikelihoodConfig(
                family=lk.family,
                df=lk.df,
                use_data_uncertainty=lk.use_data_uncertainty,
                add_learned_noise=lk.add_learned_noise,
                noise_prior_scale=dict(lk.noise_prior_scale),
                default_noise_prior_scale=lk.default_noise_prior_scale,
            ),
            sigma_prior_scale=pr.sigma_prior_scale,
            sigma_prior_log_sd=pr.sigma_prior_log_sd,
            sigma_floor=pr.sigma_floor,
            edc_scale=pr.edc_scale if pr.edc_scale > 0 else None,
            fixed_parameters=dict(fixed_parameters),
            predict_scale=n.predict_scale,
        )


# --------------------------------------------------------------------------- validation


class ConfigError(ValueError):
    """An invalid configuration; ``problems`` lists every ``key.path: message``."""

    def __init__(self, problems: list[str], source: str = "configuration") -> None:
        self.problems = list(problems)
        self.source = source
        n = len(problems)
        head = f"{source}: {n} problem{'s' if n != 1 else ''} in the configuration"
        super().__init__(head + ":\n" + "\n".join(f"  - {p}" for p in problems))


_TOML_TYPES: dict[type, str] = {
    bool: "bool",
    int: "int",
    float: "float",
    str: "str",
    list: "array",
    dict: "table",
}


def _type_name(value: Any) -> str:
    for t, name in _TOML_TYPES.items():
        if type(value) is t:
            return name
    return type(value).__name__


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_section(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _convert_scalar(tp: type, value: Any, path: str, problems: list[str]) -> Any:
    """Check the TOML type of a scalar; return the value (ints widened to float) or _BAD."""
    if tp is float and type(value) in (int, float):
        if not math.isfinite(value):
            problems.append(f"{path}: expected a finite float, found {value!r}")
            return _BAD
        return float(value)
    if type(value) is tp:
        return value
    expected = "float" if tp is float else _TOML_TYPES[tp]
    problems.append(f"{path}: expected {expected}, found {_type_name(value)} ({_short(value)})")
    return _BAD


_BAD = object()


def _convert(tp: Any, value: Any, path: str, problems: list[str]) -> Any:
    origin = get_origin(tp)
    if origin is tuple:
        item_tp = get_args(tp)[0]
        if not isinstance(value, list):
            problems.append(
                f"{path}: expected array of {_TOML_TYPES[item_tp]}, found {_type_name(value)} "
                f"({_short(value)})"
            )
            return _BAD
        items = [_convert_scalar(item_tp, v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
        return _BAD if any(v is _BAD for v in items) else tuple(items)
    if origin is Mapping:
        if not isinstance(value, dict):
            problems.append(
                f"{path}: expected table of name = float, found {_type_name(value)} "
                f"({_short(value)})"
            )
            return _BAD
        out = {k: _convert_scalar(float, v, f"{path}.{k}", problems) for k, v in value.items()}
        return _BAD if any(v is _BAD for v in out.values()) else FrozenMap(out)
    return _convert_scalar(tp, value, path, problems)


def _build(cls: type, raw: Any, path: str, problems: list[str], bad: set[str]) -> Any:
    """Build section ``cls`` from a TOML table; invalid values fall back to defaults."""
    if not isinstance(raw, dict):
        problems.append(f"{path}: expected table, found {_type_name(raw)} ({_short(raw)})")
        bad.add(path)
        return cls()
    hints = get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    for key in raw:
        if key not in known:
            where = f"{path}.{key}" if path else key
            close = difflib.get_close_matches(key, list(known), n=1)
            hint = f"did you mean {close[0]!r}?" if close else "known keys: " + ", ".join(known)
            problems.append(f"{where}: unknown key ({hint})")
    values: dict[str, Any] = {}
    for name, f in known.items():
        where = f"{path}.{name}" if path else name
        tp = hints[name]
        if _is_section(tp):
            values[name] = _build(tp, raw.get(name, {}), where, problems, bad)
            continue
        if name not in raw:
            continue
        value = _convert(tp, raw[name], where, problems)
        if value is _BAD:
            bad.add(where)
            continue
        check = f.metadata.get("check")
        msg = check(value) if check else None
        if msg:
            sub, text, found = msg if isinstance(msg, tuple) else ("", msg, _plain(value))
            problems.append(f"{where}{sub}: {text}, found {_short(found)}")
            bad.add(where)
            continue
        values[name] = value
    return cls(**values)


def _cross_checks(cfg: FitConfig, problems: list[str], bad: set[str]) -> None:
    """Check what involves several keys or the process model's parameter table."""

    def ok(*paths: str) -> bool:
        return not any(p in bad or any(b.startswith(p + ".") for b in bad) for p in paths)

    d, m, s = cfg.data, cfg.model, cfg.svi
    if ok("data.source"):
        src = d.source
        if not src.strip():
            problems.append("data.source: expected a source name or path, found ''")
        elif src not in DATA_SOURCES and not src.lower().rstrip("/").endswith(DATASET_SUFFIXES):
            problems.append(
                "data.source: expected one of "
                + ", ".join(repr(x) for x in DATA_SOURCES)
                + f" or the path of a .nc or .zarr dataset, found {src!r}"
            )
    if ok("model.process", "model.water_stress"):
        options = WATER_STRESS[m.process]
        if m.water_stress not in options:
            problems.append(
                f"model.water_stress: expected one of {', '.join(map(repr, options))} for "
                f"{m.process}, found {m.water_stress!r}"
            )
    if ok("model.process"):
        table = MODELS[m.process].table
        names = set(table.names)

        def known_names(key: str, given: Any) -> None:
            unknown = [n for n in given if n not in names]
            if unknown and ok(key):
                problems.append(
                    f"{key}: expected parameter names of {m.process} (see 'differland info "
                    f"--model {m.process}'), found unknown {unknown}"
                )

        known_names("model.free_parameters", m.free_parameters)
        known_names("model.fixed_parameters", m.fixed_parameters)
        known_names("data.synthetic.free_parameters", d.synthetic.free_parameters)
        if ok("model.fixed_parameters"):
            for n, v in m.fixed_parameters.items():
                if n in names and not table[n].lower <= v <= table[n].upper:
                    problems.append(
                        f"model.fixed_parameters.{n}: expected a value in "
                        f"[{table[n].lower:g}, {table[n].upper:g}] {table[n].units}, found {v:g}"
                    )
        if ok("model.free_parameters", "model.fixed_parameters"):
            both = sorted(set(m.free_parameters) & set(m.fixed_parameters))
            if both:
                problems.append(
                    f"model.free_parameters: {both} also in model.fixed_parameters; a "
                    "parameter is either estimated or fixed"
                )
    if ok("likelihood.noise_prior_scale"):
        unknown = [k for k in cfg.likelihood.noise_prior_scale if k not in STREAMS]
        if unknown:
            problems.append(
                f"likelihood.noise_prior_scale: expected stream names among {list(STREAMS)}, "
                f"found {unknown}"
            )
        for k, v in cfg.likelihood.noise_prior_scale.items():
            if not v > 0:
                problems.append(f"likelihood.noise_prior_scale.{k}: expected a number > 0, "
                                f"found {v:g}")  # fmt: skip
    if ok("svi.warmup", "svi.steps", "svi.schedule") and s.schedule != "constant":
        if s.warmup >= s.steps:
            problems.append(
                f"svi.warmup: expected fewer warm-up steps than svi.steps ({s.steps}) for the "
                f"{s.schedule!r} schedule, found {s.warmup}"
            )
    if ok("svi.rank", "svi.guide") and s.rank and s.guide != "lowrank":
        problems.append(
            f"svi.rank: only used by svi.guide = 'lowrank' (found guide {s.guide!r}); "
            "remove it or set it to 0"
        )


def config_from_dict(raw: Mapping[str, Any], *, source: str = "configuration") -> FitConfig:
    """Validate a parsed TOML document and build the :class:`FitConfig`.

    Parameters
    ----------
    raw : mapping
        The document (e.g. from :func:`tomllib.loads`); missing keys take defaults.
    source : str
        Name of the document in error messages (e.g. the file).

    Returns
    -------
    FitConfig
        The configuration.

    Raises
    ------
    ConfigError
        Listing every problem (unknown keys, wrong types, values out of range, unknown
        parameter names, inconsistent settings), each with its key path.
    """
    problems: list[str] = []
    bad: set[str] = set()
    cfg = _build(FitConfig, dict(raw), "", problems, bad)
    _cross_checks(cfg, problems, bad)
    if problems:
        raise ConfigError(problems, source)
    return cfg


def load_config(path: str | os.PathLike) -> FitConfig:
    """Read and validate a TOML configuration file.

    Parameters
    ----------
    path : path-like
        The ``.toml`` file.

    Returns
    -------
    FitConfig
        The configuration (defaults filled in).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ConfigError
        If the file is not valid TOML or does not follow the schema (every problem is
        listed with its key path).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"configuration file not found: {path}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"invalid TOML: {e}"], str(path)) from e
    except UnicodeDecodeError as e:
        raise ConfigError([f"not a UTF-8 text file: {e}"], str(path)) from e
    return config_from_dict(raw, source=str(path))


# --------------------------------------------------------------------------- writing


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Return a configuration (or one section) as plain nested dicts, lists and scalars."""
    out: dict[str, Any] = {}
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        out[f.name] = config_to_dict(value) if dataclasses.is_dataclass(value) else _plain(value)
    return out


def config_with(
    cfg: FitConfig, overrides: Mapping[str, Any], *, source: str = "configuration with overrides"
) -> FitConfig:
    """Return ``cfg`` with some keys replaced, validated like a file.

    Parameters
    ----------
    cfg : FitConfig
        The configuration.
    overrides : mapping
        Dotted key paths -> values, e.g. ``{"svi.steps": 300}``.
    source : str
        Name of the result in error messages.

    Returns
    -------
    FitConfig
        The new configuration.

    Raises
    ------
    ConfigError
        If an override is invalid.
    """
    raw = config_to_dict(cfg)
    for dotted, value in overrides.items():
        *parents, last = dotted.split(".")
        node = raw
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return config_from_dict(raw, source=source)


_COMMENT_WIDTH = 88
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k: str) -> str:
    return k if _BARE_KEY.match(k) else json.dumps(k)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, tuple | list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        if not v:
            return "{}"
        return "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _write_section(section: Any, name: str, lines: list[str], comments: bool) -> None:
    if lines:
        lines.append("")
    if comments and section.__doc__:
        summary = section.__doc__.strip().splitlines()[0].split(": ", 1)[-1]
        lines.append(f"# {summary}")
    lines.append(f"[{name}]")
    subsections = []
    for f in fields(section):
        value = getattr(section, f.name)
        if dataclasses.is_dataclass(value):
            subsections.append((value, f"{name}.{f.name}"))
            continue
        if comments and f.metadata.get("doc"):
            lines += textwrap.wrap(
                f.metadata["doc"], _COMMENT_WIDTH, initial_indent="# ", subsequent_indent="#   "
            )
        lines.append(f"{_key(f.name)} = {_value(value)}")
    for value, sub in subsections:
        _write_section(value, sub, lines, comments)


def config_to_toml(cfg: FitConfig, *, comments: bool = False) -> str:
    """Write a configuration as TOML (every key, defaults included).

    Parameters
    ----------
    cfg : FitConfig
        The configuration.
    comments : bool
        Precede every section and key with its documentation.

    Returns
    -------
    str
        TOML text; ``config_from_dict(tomllib.loads(text)) == cfg``.
    """
    lines: list[str] = []
    if comments:
        lines += [
            "# differland fit configuration (every key optional; the values shown are the",
            "# defaults unless set in the file this was made from)",
        ]
    for f in fields(cfg):
        _write_section(getattr(cfg, f.name), f.name, lines, comments)
    return "\n".join(lines) + "\n"
