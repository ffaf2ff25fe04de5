"""The configuration of ``differland fit``: a TOML schema, validated before anything runs.

A fit is described by one TOML file with the sections below. Every key is optional;
missing keys take the defaults defined here (the one place where they live: the
dataclass fields of this module, which in turn take the model's defaults from
:mod:`.config`). :func:`load_config` / :func:`config_from_dict` check the whole file
and report **every** problem at once, each with its key path::

    svi.steps: expected int, found str ('300')
    svi.guide: expected one of 'normal', 'lowrank', 'delta', 'site_mvn', found 'iaf'
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
    training sites held out for early stopping], ``period`` ["common"; fluxnet-sites;
    ``"union"``: each site's forcing outside its record is filled with its calendar
    climatology], ``observation_step`` ["model"; ``"monthly"``: daily observations
    compared as calendar-month means with the daily model averaged over the same days],
    ``predictors`` [[]: every ``env`` feature and the vegetation classes; else the
    network's predictors: ``env`` feature names of the dataset (inputs in this order)
    and ``"vegetation_class"`` for the one-hot class columns (last), e.g.
    ``["vegetation_class"]`` or ``["mat", "map", "elevation", "forest_age", "lat"]``
    (the synthetic world's features). Unknown names are an error before anything is
    fitted (synthetic data: when the configuration is read; other sources: once the
    dataset is read). The selection is stored in the run (``config.toml``,
    ``data_meta.json``), so ``differland predict`` and ``differland report`` encode new
    sites the same way].
``[data.synthetic]``
    ``sites`` [32], ``years`` [4], ``seed`` [0], ``free_parameters`` [[]: all of the
    relationship's], ``streams`` [[]: gpp nee et lai], ``gap_fraction`` [0.3].
``[model]``
    ``process`` ["dalec993"], ``mode`` ["faithful"], ``water_stress`` ["default";
    ``"nothing"`` / ``"baseline"``: no water stress; the hybrid components of spec §1.4
    (:mod:`.hybrid_process`): ``"nn_paw"``, a network water-stress factor (31 weights),
    ``"nn_whole"``, a network GPP and ET replacing the canopy (202 weights, inputs
    standardised with the fitted sites' forcing); their initial weights come from
    ``svi.seed`` and are point estimates or, with ``[network] bayesian_weights``, random
    variables with the same weight prior as the prior network's],
    ``fix_uninformed`` [true: hold parameters no stream informs at their defaults],
    ``free_parameters`` [[]: if set, every other parameter is held fixed],
    ``fixed_at`` ["default_site"], ``fixed_parameters`` [{}: name = physical value],
    ``circular_phases`` [false: the phases Bday / Fday on the published bounded
    transform; true: angles on the circle of the year].
``[network]``
    ``hidden`` [[32, 32, 32]], ``activation``, ``negative_slope``, ``bayesian_weights``,
    ``weight_prior_scale``, ``bias_prior_scale``, ``predict_scale``, ``scale_floor``.
``[likelihood]``
    ``family`` ["normal"], ``df`` [4.0], ``use_data_uncertainty`` [true],
    ``add_learned_noise`` [false], ``noise_prior_scale`` [{}: stream = scale],
    ``default_noise_prior_scale`` [1.0], ``discrepancy`` [[]: streams with a seasonal
    model discrepancy, :mod:`~differland_bayes.bayes.discrepancy`],
    ``discrepancy_prior_scale`` [{}: stream = scale; default the noise prior scale],
    ``relative_noise`` [[]: streams whose noise sd grows with the flux],
    ``relative_noise_prior_scale`` [0.5].
``[prior]``
    ``sigma_prior_scale`` [0.3], ``sigma_prior_log_sd`` [1.0], ``sigma_floor`` [0.0],
    ``edc_scale`` [0.0: off].
``[svi]``
    ``guide`` ["normal"; ``"lowrank"``: low-rank covariance of the global latents;
    ``"delta"``: MAP; ``"site_mvn"``: a full covariance matrix per site over its residuals
    ``eps``, globals mean field or, with ``rank``, low rank], ``rank`` [0: NumPyro's
    default for ``"lowrank"``, mean field for ``"site_mvn"``], ``init_scale`` [0.1],
    ``loss`` ["trace"],
    ``steps`` [2000], ``batch_size`` [0], ``lr`` [0.01], ``clip_norm`` [10.0; 0 off],
    ``schedule`` ["cosine"], ``warmup`` [0], ``end_lr_factor`` [0.01],
    ``num_particles`` [1], ``seed`` [0], ``checkpoint_every`` [500], ``log_every`` [0],
    ``map_steps`` [0: no MAP warm start], ``map_lr`` [0.01], ``map_sigma_rounds`` [0],
    ``px_every`` [0: no parameter-expansion steps].
``[svi.early_stopping]`` (used when ``data.holdout_fraction > 0``)
    ``every`` [100], ``patience`` [10], ``min_delta`` [0.0], ``num_particles`` [0].
``[output]``
    ``posterior_samples`` [200].
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from ..dataset import STREAMS
from ..process.registry import MODELS, NN_OPTIONS, WATER_STRESS
from .config import FrozenMap
from .fitconfig_schema import (  # noqa: F401
    DATA_SOURCES,
    DATASET_SUFFIXES,
    FIXED_AT,
    SITE_SPLITS,
    Check,
    DataConfig,
    EarlyStoppingConfig,
    FitConfig,
    LikelihoodSection,
    ModelSection,
    NetworkSection,
    OutputConfig,
    PriorSection,
    SVIConfig,
    SyntheticConfig,
)
from .fitconfig_toml import _plain, config_to_dict, config_to_toml

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
        options = [*WATER_STRESS[m.process], *NN_OPTIONS]
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
    if ok("data.source", "data.predictors") and d.source == "synthetic" and d.predictors:
        from ..dataset import CLASS_PREDICTOR
        from ..synthetic.climate import FEATURES

        have = [*FEATURES, CLASS_PREDICTOR]
        unknown = [p for p in d.predictors if p not in have]
        if unknown:
            problems.append(
                f"data.predictors: expected names among the synthetic world's predictors "
                f"{have} ({CLASS_PREDICTOR!r}: the one-hot vegetation classes), found "
                f"unknown {unknown}"
            )
    if ok("svi.px_every", "svi.guide", "prior.sigma_floor") and s.px_every > 0:
        if s.guide != "normal":
            problems.append(
                f"svi.px_every: the parameter-expansion step needs svi.guide = 'normal', "
                f"found guide {s.guide!r} (set px_every = 0 or guide = 'normal')"
            )
        if cfg.prior.sigma_floor != 0:
            problems.append(
                "svi.px_every: the parameter-expansion step needs prior.sigma_floor = 0, "
                f"found {cfg.prior.sigma_floor!r} (with a floor the rescaling changes z)"
            )
    lk = cfg.likelihood
    if ok("likelihood.noise_prior_scale"):
        _scale_map_problems("noise_prior_scale", lk.noise_prior_scale, STREAMS,
                            f"stream names among {list(STREAMS)}", problems)  # fmt: skip
    if ok("likelihood.discrepancy_prior_scale"):
        _scale_map_problems("discrepancy_prior_scale", lk.discrepancy_prior_scale,
                            lk.discrepancy, f"streams of likelihood.discrepancy "
                            f"{list(lk.discrepancy)}", problems)  # fmt: skip
    for name, why in (("discrepancy", "a discrepancy needs observations"),
                      ("relative_noise", "noise applies to observed streams")):  # fmt: skip
        if ok(f"likelihood.{name}", "data.streams") and d.streams:
            missing = [k for k in getattr(lk, name) if k not in d.streams]
            if missing:
                problems.append(
                    f"likelihood.{name}: expected streams among data.streams "
                    f"{list(d.streams)}, found {missing} ({why})"
                )
    if ok("svi.warmup", "svi.steps", "svi.schedule") and s.schedule != "constant":
        if s.warmup >= s.steps:
            problems.append(
                f"svi.warmup: expected fewer warm-up steps than svi.steps ({s.steps}) for the "
                f"{s.schedule!r} schedule, found {s.warmup}"
            )
    if ok("svi.rank", "svi.guide") and s.rank and s.guide not in ("lowrank", "site_mvn"):
        problems.append(
            f"svi.rank: only used by svi.guide = 'lowrank' or 'site_mvn' (found guide "
            f"{s.guide!r}); remove it or set it to 0"
        )


def _scale_map_problems(name: str, scales: Mapping[str, float], allowed: Any, what: str,
                        problems: list[str]) -> None:  # fmt: skip
    """Problems of a ``[likelihood]`` stream -> prior scale table: unknown keys, scales <= 0."""
    unknown = [k for k in scales if k not in allowed]
    if unknown:
        problems.append(f"likelihood.{name}: expected {what}, found {unknown}")
    for k, v in scales.items():
        if not v > 0:
            problems.append(f"likelihood.{name}.{k}: expected a number > 0, found {v:g}")


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
