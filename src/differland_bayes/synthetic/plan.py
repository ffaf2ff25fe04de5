"""The checked arguments of a synthetic world (:class:`Plan`) and its compiled simulator.

Everything that does not depend on the block of sites being generated is decided here,
once: the model and time axis, the relationship and which parameters follow it, the
baseline of the others, streams, noise and gap settings, the site split, the block width
and the ``jit(vmap(simulate))`` function (cached per model and streams, so that repeated
worlds do not recompile).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np
import xarray as xr

from ..dataset import STREAMS
from ..defaults import default_theta
from ..process.base import AbstractDalec
from ..process.registry import get_model
from ..process.simulate import simulate
from .climate import (
    FEATURES,
    VEGETATION_CLASSES,
    TimeAxis,
    make_time_axis,
)
from .observations import DEFAULT_NOISE, NoiseSpec, site_split
from .relationship import Relationship, default_relationship
from .resample import ForcingSource
from .rng import SiteRandom, check_seed

__all__ = ["DEFAULT_STREAMS", "FORCING_ATTRS", "MODEL_STREAMS", "Plan", "make_plan"]

log = logging.getLogger(__name__)

DEFAULT_STREAMS = ("gpp", "nee", "et", "lai")
#: streams each model can observe
MODEL_STREAMS = {
    "dalec993": ("gpp", "nee", "reco", "et", "lai", "biomass", "sif", "vod"),
    "dalec990": ("gpp", "nee", "reco", "et", "lai", "biomass"),
}
DEFAULT_GAP_FRACTION = 0.3
MAX_GAP_FRACTION = 0.95
DEFAULT_SITE_SPLIT = (0.8, 0.1, 0.1)
BLOCK_SITE_STEPS = 2**19  #: site-steps per block of the default block size
MAX_BLOCK = 4096  #: sites
PAD_MULTIPLE = 8  #: blocks are padded to a multiple of this many sites
SITE_PREFIX = "syn"

#: initial pools of the synthetic sites that differ from the default site's (gC m-2): a
#: leafy start (LAI 1-2), so that sites whose parameters favour slow growth do not collapse
BASELINE_OVERRIDES = {"Clab": 100.0, "Cfol": 100.0}

FORCING_ATTRS = {
    "t_min": ("degC", "daily minimum air temperature (step mean)"),
    "t_max": ("degC", "daily maximum air temperature (step mean)"),
    "swrad": ("MJ m-2 d-1", "shortwave downward radiation"),
    "co2": ("ppm", "atmospheric CO2 mole fraction"),
    "vpd": ("hPa", "vapour pressure deficit"),
    "precip": ("mm d-1", "precipitation"),
}


def _stream_output(stream: str) -> Callable[[Any], jax.Array]:
    def pools(o):
        return o.next_labile_pool + o.next_foliar_pool + o.next_root_pool + o.next_wood_pool

    return {
        "gpp": lambda o: o.gpp,
        "nee": lambda o: o.nee,
        "reco": lambda o: (
            o.respiration_auto + o.respiration_hetero_litter + o.respiration_hetero_som
        ),
        "et": lambda o: o.ET,
        "lai": lambda o: o.lai,
        "biomass": pools,
        "sif": lambda o: o.SIF,
        "vod": lambda o: o.vod,
    }[stream]


_RUNNERS: dict[tuple, Callable] = {}


def _runner(model: AbstractDalec, streams: tuple[str, ...]) -> Callable:
    """``jit(vmap(simulate))`` returning only the streams' series (cached per model)."""
    try:
        key = (model, streams)
        hash(key)
    except TypeError:  # an unhashable custom component: no caching
        key = None
    if key is not None and key in _RUNNERS:
        return _RUNNERS[key]
    getters = {s: _stream_output(s) for s in streams}

    def run(params, pools0, forcing):
        out = jax.vmap(lambda p, p0, f: simulate(model, p, p0, f))(params, pools0, forcing)
        return {s: g(out) for s, g in getters.items()}

    fn = jax.jit(run)
    if key is not None:
        _RUNNERS[key] = fn
    return fn


@dataclass
class Plan:
    """Everything fixed before the first block: checked arguments and derived constants."""

    model: AbstractDalec
    n_sites: int
    seed: int
    axis: TimeAxis
    relationship: Relationship
    varying: np.ndarray  #: (P,) bool
    baseline_z: np.ndarray  #: (P,)
    other_parameters: str
    other_sd: float
    streams: tuple[str, ...]
    noise: dict[str, NoiseSpec]
    gaps: dict[str, float]
    fractions: tuple[float, float, float]
    train_years: int
    include_truth: bool
    block: int  #: sites per block
    width: int  #: padded block width
    source: ForcingSource | None
    rand: SiteRandom = field(init=False)
    labels: np.ndarray = field(init=False)
    run: Callable = field(init=False)  #: jit(vmap(simulate)) -> {stream: (site, T)}
    site_ids: Callable[[int, int], np.ndarray] = field(init=False)
    class_dtype: str = field(init=False)  #: fixed-width dtype of vegetation_class

    def __post_init__(self) -> None:
        self.rand = SiteRandom(self.seed)
        self.labels = site_split(self.n_sites, self.fractions, self.rand.generator("split_site"))
        self.run = _runner(self.model, self.streams)
        digits = max(5, len(str(self.n_sites - 1)))
        dtype = f"<U{len(SITE_PREFIX) + digits}"
        self.site_ids = lambda start, stop: np.array(
            [f"{SITE_PREFIX}{i:0{digits}d}" for i in range(start, stop)], dtype=dtype
        )
        classes = list(VEGETATION_CLASSES)
        if self.source is not None and self.source.vegetation_class is not None:
            classes += list(self.source.vegetation_class)
            no_offset = sorted(set(self.source.vegetation_class) - set(self.relationship.classes))
            if no_offset:
                log.info("vegetation classes without a relationship offset (0): %s", no_offset)
        self.class_dtype = f"<U{max(len(c) for c in classes)}"

    @property
    def blocks(self) -> list[tuple[int, int]]:
        """``(start, stop)`` of each block of sites."""
        return [(a, min(a + self.block, self.n_sites)) for a in range(0, self.n_sites, self.block)]


def _check_fraction(name: str, value: object, upper: float) -> float:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, found {value!r}") from None
    if not 0.0 <= v <= upper:
        raise ValueError(f"{name} must be in [0, {upper}], found {value!r}")
    return v


def make_plan(
    n_sites: int,
    *,
    model: str | AbstractDalec,
    years: int,
    start_year: int,
    seed: int,
    relationship: Relationship | None,
    free_parameters: Sequence[str] | None,
    other_parameters: str,
    other_sd: float,
    streams: Sequence[str] | None,
    noise: Mapping[str, NoiseSpec | tuple[float, float]] | None,
    gap_fraction: float | Mapping[str, float],
    site_split: tuple[float, float, float],
    train_years: int | None,
    resample_forcing_from: xr.Dataset | str | os.PathLike | None,
    include_truth: bool,
    block_size: int | None,
) -> Plan:
    """Check the arguments of :func:`~differland_bayes.synthetic.synthesize` (see there)."""
    if isinstance(model, str):
        model = get_model(model)
    if isinstance(n_sites, bool) or not isinstance(n_sites, int | np.integer) or n_sites < 1:
        raise ValueError(f"n_sites must be a positive integer, found {n_sites!r}")
    if isinstance(years, bool) or not isinstance(years, int | np.integer) or years < 1:
        raise ValueError(f"years must be a positive integer, found {years!r}")
    seed = check_seed(seed)
    table = model.table
    daily = model.name == "dalec990"
    axis = make_time_axis(start_year, int(years), daily=daily)

    rel = default_relationship() if relationship is None else relationship
    if free_parameters is not None:
        rel = rel.subset(list(free_parameters))
    unknown = [p for p in rel.parameters if p not in table.names]
    if unknown:
        raise ValueError(f"relationship parameters {unknown} are not in the {model.name} table")
    bad_features = [f for f in rel.features if f not in FEATURES]
    if bad_features:
        raise ValueError(
            f"relationship features {bad_features} are not env features {list(FEATURES)}"
        )
    varying = np.array([n in rel.parameters for n in table.names], bool)
    if other_parameters not in ("default", "random"):
        raise ValueError(
            f"other_parameters must be 'default' or 'random', found {other_parameters!r}"
        )
    other_sd = _check_fraction("other_sd", other_sd, 10.0)

    available = MODEL_STREAMS[model.name]
    streams = tuple(DEFAULT_STREAMS if streams is None else streams)
    wrong = [s for s in streams if s not in available]
    if wrong or not streams or len(set(streams)) != len(streams):
        raise ValueError(
            f"streams must be distinct names among {list(available)} for {model.name}, "
            f"found {list(streams)}"
        )
    streams = tuple(s for s in STREAMS if s in streams)  # canonical order
    specs = dict(DEFAULT_NOISE)
    for s, spec in (noise or {}).items():
        if s not in DEFAULT_NOISE:
            raise ValueError(f"noise for unknown stream {s!r}; known: {list(DEFAULT_NOISE)}")
        spec = NoiseSpec(*(float(v) for v in spec))
        if not all(math.isfinite(v) and v >= 0 for v in spec):
            raise ValueError(f"noise of {s}: relative and floor must be >= 0, found {spec}")
        specs[s] = spec
    if isinstance(gap_fraction, Mapping):
        extra = set(gap_fraction) - set(streams)
        if extra:
            raise ValueError(f"gap_fraction for streams not generated: {sorted(extra)}")
        gaps = {s: gap_fraction.get(s, DEFAULT_GAP_FRACTION) for s in streams}
    else:
        gaps = dict.fromkeys(streams, gap_fraction)
    gaps = {
        s: _check_fraction(f"gap_fraction of {s}", g, MAX_GAP_FRACTION) for s, g in gaps.items()
    }

    fractions = tuple(_check_fraction("site_split", f, 1.0) for f in site_split)
    if len(fractions) != 3 or not math.isclose(sum(fractions), 1.0, abs_tol=1e-9):
        raise ValueError(f"site_split must be 3 fractions summing to 1, found {site_split!r}")
    train_years = math.ceil(years / 2) if train_years is None else int(train_years)
    if not 0 <= train_years <= years:
        raise ValueError(f"train_years must be in [0, {years}], found {train_years}")

    if block_size is None:
        block_size = 2 ** int(math.log2(max(BLOCK_SITE_STEPS // len(axis), PAD_MULTIPLE)))
        block_size = min(block_size, MAX_BLOCK)
    if (
        isinstance(block_size, bool)
        or not isinstance(block_size, int | np.integer)
        or block_size < 1
    ):
        raise ValueError(f"block_size must be a positive integer, found {block_size!r}")
    block = min(int(block_size), int(n_sites))
    width = -(-block // PAD_MULTIPLE) * PAD_MULTIPLE
    source = None
    if resample_forcing_from is not None:
        source = ForcingSource(resample_forcing_from, daily=daily)
    baseline_theta = default_theta(model)
    for name, value in BASELINE_OVERRIDES.items():
        baseline_theta[table.names.index(name)] = value
    u = np.log(baseline_theta / table.lower) / np.log(table.upper / table.lower)
    baseline_z = np.tan(np.pi * (u - 0.5))
    baseline_z[np.abs(baseline_z) < 1e-12] = 0.0  # geometric means of the bounds: z = 0
    return Plan(
        model=model,
        n_sites=int(n_sites),
        seed=seed,
        axis=axis,
        relationship=rel,
        varying=varying,
        baseline_z=baseline_z,
        other_parameters=other_parameters,
        other_sd=other_sd,
        streams=streams,
        noise={s: specs[s] for s in streams},
        gaps=gaps,
        fractions=fractions,  # type: ignore[arg-type]
        train_years=train_years,
        include_truth=bool(include_truth),
        block=block,
        width=width,
        source=source,
    )
