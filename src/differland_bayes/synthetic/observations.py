"""Observation noise, realistic gaps and the train/validation splits of a synthetic world.

Noise
    ``obs = truth + sd * eps`` with ``eps ~ N(0, 1)`` independent per site, step and
    stream, and ``sd = relative * |truth| + floor`` (:data:`DEFAULT_NOISE`); ``sd`` is
    written as ``<stream>_unc`` where the stream is observed. Observations may therefore
    be negative where the truth is near zero (LAI, GPP in winter).
Gaps
    For a target missing fraction ``g`` of a stream, its mask combines, per site:

    * seasonal gaps (shared by the streams of an instrument group): steps with a mean
      air temperature below 0 degC (snow, low turbulence), or at sites without frost the
      wettest quarter of the steps (clouds, rain), each missing with a probability that
      makes their expected share ``SEASONAL_SHARE * g``;
    * one to three long outages (shared by the group) of total length
      ``OUTAGE_SHARE * g * T`` steps at random positions;
    * random single-step gaps per stream, with the probability that brings the site's
      expected missing fraction to exactly ``g``.

    Groups: eddy-covariance tower (``gpp``, ``nee``, ``reco``, ``et``), satellite
    (``lai``, ``sif``, ``vod``). ``biomass`` is an annual inventory: observed only on the
    last step of each calendar year, each such value missing with probability ``g``.
Splits
    ``split_time`` is 1 (training) in the first ``train_years`` calendar years and 2
    (validation) after; ``split_site`` labels sites ``train`` / ``validation`` / ``test``
    by a seeded permutation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from .climate import TimeAxis
from .rng import SiteRandom

__all__ = [
    "DEFAULT_NOISE",
    "STREAM_GROUPS",
    "NoiseSpec",
    "gap_masks",
    "observe",
    "site_split",
    "time_split",
]

SEASONAL_SHARE = 0.3  #: share of the gap budget spent on seasonal gaps, 1
SEASONAL_MAX_PROBABILITY = 0.9  #: largest chance that a seasonal step is missing, 1
OUTAGE_SHARE = 0.3  #: share of the gap budget spent on long outages, 1
MAX_OUTAGES = 3
FROST = 0.0  #: mean air temperature below which a step is winter, degC
WET_QUARTER = 0.75  #: precipitation quantile above which a frost-free step is wet season


class NoiseSpec(NamedTuple):
    """Noise of one stream: ``sd = relative * |value| + floor``."""

    relative: float  #: fraction of the magnitude, 1
    floor: float  #: in the units of the stream


#: default noise of each stream (floor in the stream's canonical units)
DEFAULT_NOISE: dict[str, NoiseSpec] = {
    "gpp": NoiseSpec(0.10, 0.2),  # gC m-2 d-1
    "nee": NoiseSpec(0.10, 0.3),  # gC m-2 d-1
    "reco": NoiseSpec(0.10, 0.2),  # gC m-2 d-1
    "et": NoiseSpec(0.10, 0.1),  # mm d-1
    "lai": NoiseSpec(0.10, 0.1),  # m2 m-2
    "biomass": NoiseSpec(0.10, 50.0),  # gC m-2
    "sif": NoiseSpec(0.10, 0.05),  # mW m-2 nm-1 sr-1
    "vod": NoiseSpec(0.05, 0.01),  # 1
}

#: instrument group of each stream (seasonal gaps and outages are shared in a group)
STREAM_GROUPS: dict[str, str] = {
    "gpp": "tower",
    "nee": "tower",
    "reco": "tower",
    "et": "tower",
    "lai": "satellite",
    "sif": "satellite",
    "vod": "satellite",
    "biomass": "inventory",
}


def observe(
    truth: np.ndarray, spec: NoiseSpec, rand: SiteRandom, sites: np.ndarray, stream: str
) -> tuple[np.ndarray, np.ndarray]:
    """Noisy observations of ``truth`` ``(site, time)`` and the noise sd used.

    Returns
    -------
    tuple of numpy.ndarray
        ``(obs, sd)``, float64, same shape as ``truth``, in the units of the stream.
    """
    truth = np.asarray(truth, np.float64)
    sd = spec.relative * np.abs(truth) + spec.floor
    eps = rand.normal(f"noise-{stream}", sites, truth.shape[1:])
    return truth + sd * eps, sd


def _season(t_mean: np.ndarray, precip: np.ndarray, axis: TimeAxis) -> np.ndarray:
    """Winter steps, or the wettest quarter of the steps at frost-free sites, ``(site, T)``."""
    cold = t_mean < FROST
    if axis.daily:  # 31-day running mean, so that the wet season is a season, not rain days
        padded = np.pad(precip, ((0, 0), (15, 15)), mode="edge")
        c = np.concatenate([np.zeros((len(precip), 1)), np.cumsum(padded, axis=1)], axis=1)
        precip = (c[:, 31:] - c[:, :-31]) / 31.0
    wet = precip >= np.quantile(precip, WET_QUARTER, axis=1, keepdims=True)
    has_winter = cold.any(axis=1, keepdims=True)
    return np.where(has_winter, cold, wet)


def _structured_gaps(
    budget: float,
    season: np.ndarray,
    rand: SiteRandom,
    sites: np.ndarray,
    group: str,
) -> np.ndarray:
    """Seasonal gaps and long outages of one instrument group, ``(site, T)`` bool."""
    n_s, n_t = season.shape
    u_season = rand.uniform(f"gaps-{group}-season", sites, (n_t,))
    share = season.mean(axis=1, keepdims=True)
    p_season = np.minimum(
        SEASONAL_MAX_PROBABILITY, SEASONAL_SHARE * budget / np.maximum(share, 1e-12)
    )
    gaps = season & (u_season < p_season)

    u = rand.uniform(f"gaps-{group}-outage", sites, (1 + 2 * MAX_OUTAGES,))
    total = int(np.floor(OUTAGE_SHARE * budget * n_t))
    if total > 0:
        count = 1 + np.floor(u[:, 0] * MAX_OUTAGES).astype(int)  # 1..MAX_OUTAGES
        weights = u[:, 1 : 1 + MAX_OUTAGES] * (np.arange(MAX_OUTAGES) < count[:, None])
        lengths = np.floor(total * weights / weights.sum(axis=1, keepdims=True)).astype(int)
        starts = np.floor(u[:, 1 + MAX_OUTAGES :] * (n_t - lengths + 1)).astype(int)
        t = np.arange(n_t)
        outage = (t >= starts[:, :, None]) & (t < (starts + lengths)[:, :, None])
        gaps |= outage.any(axis=1)
    return gaps


def gap_masks(
    fractions: Mapping[str, float],
    axis: TimeAxis,
    t_mean: np.ndarray,
    precip: np.ndarray,
    rand: SiteRandom,
    sites: np.ndarray,
) -> dict[str, np.ndarray]:
    """Observation masks (True = observed) of each stream in ``fractions``.

    Parameters
    ----------
    fractions : mapping
        ``{stream: target missing fraction}`` in ``[0, 1)``.
    axis : TimeAxis
        Time steps.
    t_mean, precip : numpy.ndarray
        ``(site, T)`` mean air temperature (degC) and precipitation (mm d-1), for the
        seasonal gaps.
    rand : SiteRandom
        Random streams.
    sites : numpy.ndarray
        Global site indices.

    Returns
    -------
    dict
        ``{stream: bool array (site, T)}``.
    """
    n_t = len(axis)
    season = _season(t_mean, precip, axis)
    out: dict[str, np.ndarray] = {}
    groups: dict[str, list[str]] = {}
    for s in fractions:
        groups.setdefault(STREAM_GROUPS[s], []).append(s)
    for group, members in groups.items():
        if group == "inventory":
            for s in members:
                u = rand.uniform(f"gaps-{s}", sites, (n_t,))
                out[s] = axis.year_end[None, :] & (u >= fractions[s])
            continue
        budget = min(fractions[s] for s in members)
        structured = _structured_gaps(budget, season, rand, sites, group)
        f_struct = structured.mean(axis=1, keepdims=True)
        for s in members:
            p_random = np.clip((fractions[s] - f_struct) / np.maximum(1.0 - f_struct, 1e-12), 0, 1)
            u = rand.uniform(f"gaps-{s}", sites, (n_t,))
            out[s] = ~(structured | (u < p_random))
    return out


def time_split(axis: TimeAxis, train_years: int, n_sites: int) -> np.ndarray:
    """``split_time`` ``(site, T)`` int8: 1 in the first ``train_years`` years, else 2."""
    first = int(axis.year[0])
    row = np.where(axis.year < first + train_years, 1, 2).astype(np.int8)
    return np.broadcast_to(row, (n_sites, len(axis)))


def site_split(
    n_sites: int, fractions: tuple[float, float, float], rng: np.random.Generator
) -> np.ndarray:
    """``split_site`` labels by a seeded permutation (counts rounded, the rest ``train``)."""
    n_val = round(fractions[1] * n_sites)
    n_test = min(round(fractions[2] * n_sites), n_sites - n_val)
    labels = np.full(n_sites, "train", dtype="<U10")
    order = rng.permutation(n_sites)
    labels[order[n_sites - n_val - n_test : n_sites - n_test]] = "validation"
    labels[order[n_sites - n_test :]] = "test"
    return labels
