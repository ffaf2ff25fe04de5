"""Synthetic worlds: sites, forcing, true parameters, simulation and observations.

:func:`synthesize` builds a world in memory; :func:`synthesize_to_zarr` writes it one
block of sites at a time to a Zarr store (bounded memory, atomic). Both give the same
values for the same arguments: every random number is keyed by ``(seed, stage, site)``
(:mod:`~differland_bayes.synthetic.rng`), and the simulation's results do not depend on
the block width (blocks are padded to a multiple of 8 sites; a batch of one site would
take a different code path in XLA).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time as _time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Literal

import jax.numpy as jnp
import numpy as np
import xarray as xr

from ..forcing import build_forcing
from ..io.atomic import check_can_write
from ..params import to_physical_numpy
from ..process.base import AbstractDalec
from .climate import draw_environment, generate_climate, realised_climate
from .layout import FEATURE_NAMES, GENERATOR_VERSION, encoding, label
from .observations import NoiseSpec, gap_masks, observe, time_split
from .plan import FORCING_ATTRS, Plan, make_plan
from .relationship import Relationship

__all__ = ["GENERATOR_VERSION", "synthesize", "synthesize_to_zarr"]

log = logging.getLogger(__name__)


# -- one block of sites -----------------------------------------------------------------
def _parameters(
    plan: Plan, env: np.ndarray, vegetation: np.ndarray, sites: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Draw the true unconstrained parameters ``(site, P)``; also return the residual."""
    n_p = len(plan.model.table)
    z = np.tile(plan.baseline_z, (len(sites), 1))
    residual = np.zeros_like(z)
    idx = np.flatnonzero(plan.varying)
    if len(idx):
        rel = plan.relationship
        order = [rel.parameters.index(plan.model.table.names[i]) for i in idx]
        eps = plan.rand.normal("residual", sites, (n_p,))
        z[:, idx] = rel.mean_z(env, FEATURE_NAMES, vegetation)[:, order]
        residual[:, idx] = eps[:, idx] * rel.residual_sd[order]
    if plan.other_parameters == "random":
        others = ~plan.varying
        eps = plan.rand.normal("other-parameters", sites, (n_p,))
        residual[:, others] = plan.other_sd * eps[:, others]
    return z + residual, residual


def _simulate(
    plan: Plan, forcing: dict[str, np.ndarray], lat: np.ndarray, theta: np.ndarray
) -> dict[str, np.ndarray]:
    """Simulate the noise-free series of the plan's streams, ``{stream: (site, T)}``."""
    ds = xr.Dataset(
        {k: (("site", "time"), v, {"units": FORCING_ATTRS[k][0]}) for k, v in forcing.items()},
        coords={"time": plan.axis.time, "lat": ("site", lat, {"units": "degrees_north"})},
    )
    f = build_forcing(ds, plan.model)
    f = type(f)(*(jnp.asarray(x, jnp.float32) for x in f))
    params, pools0 = plan.model.split(jnp.asarray(theta, jnp.float32))
    out = {s: np.asarray(v) for s, v in plan.run(params, pools0, f).items()}
    for s, v in out.items():
        bad = ~np.all(np.isfinite(v), axis=1)
        if bad.any():
            log.warning("%s: non-finite simulated values at %d site(s)", s, int(bad.sum()))
    return out


def _block(plan: Plan, start: int, stop: int) -> dict[str, np.ndarray]:
    """Generate every per-site array of sites ``start .. stop - 1`` (first axis: site)."""
    n = stop - start
    sites = np.minimum(np.arange(start, start + plan.width), stop - 1)  # padded
    env = draw_environment(plan.rand, sites)
    out: dict[str, np.ndarray] = {}
    if plan.source is None:
        forcing = generate_climate(env, plan.axis, plan.rand, sites)
    else:
        src = plan.source
        forcing, j = src.resample(plan.rand, sites, plan.axis)
        env["lat"] = src.lat[j]
        if src.lon is not None:
            env["lon"] = src.lon[j]
        if src.vegetation_class is not None:
            env["vegetation_class"] = src.vegetation_class[j]
        for name, values in src.features.items():
            env[name] = np.where(np.isfinite(values[j]), values[j], env[name])
        out["forcing_source_site"] = src.sites[j]
    forcing = {k: np.asarray(v, np.float32) for k, v in forcing.items()}
    mat, map_ = realised_climate(forcing, plan.axis)
    columns = {"mat": mat, "map": map_, **{f: env[f] for f in FEATURE_NAMES[2:]}}
    env_matrix = np.column_stack([columns[f] for f in FEATURE_NAMES])
    vegetation = np.asarray(env["vegetation_class"]).astype(plan.class_dtype)
    z, residual = _parameters(plan, env_matrix, vegetation, sites)
    theta = _to_physical(plan, z)
    truth = _simulate(plan, forcing, env["lat"], theta)

    t_mean = 0.5 * (forcing["t_min"].astype(float) + forcing["t_max"])
    masks = gap_masks(plan.gaps, plan.axis, t_mean, forcing["precip"], plan.rand, sites)
    out.update(forcing)
    for s in plan.streams:
        obs, sd = observe(truth[s], plan.noise[s], plan.rand, sites, s)
        m = masks[s]
        out[s] = np.where(m, obs, np.nan).astype(np.float32)
        out[f"{s}_mask"] = m
        out[f"{s}_unc"] = np.where(m, sd, np.nan).astype(np.float32)
        if plan.include_truth:
            out[f"true_{s}"] = truth[s]
    out.update(
        env=env_matrix,
        lat=env["lat"],
        lon=env["lon"],
        vegetation_class=vegetation,
        split_time=time_split(plan.axis, plan.train_years, len(sites)),
        true_z=z,
        true_parameters=theta,
        true_z_residual=residual,
    )
    return {k: np.asarray(v)[:n] for k, v in out.items()}


def _to_physical(plan: Plan, z: np.ndarray) -> np.ndarray:
    """NumPy float64 version of ``table.to_physical``."""
    return to_physical_numpy(z, plan.model.table.lower, plan.model.table.upper)


# -- progress and summary ---------------------------------------------------------------
class _Tally:
    """Counts for the summary line and the progress log."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.observed = dict.fromkeys(plan.streams, 0)
        self.possible = dict.fromkeys(plan.streams, 0)
        self.sites = 0
        self.t0 = _time.perf_counter()

    def add(self, arrays: dict[str, np.ndarray]) -> None:
        n = len(arrays["lat"])
        self.sites += n
        for s in self.plan.streams:
            self.observed[s] += int(arrays[f"{s}_mask"].sum())
            self.possible[s] += n * int(
                self.plan.axis.year_end.sum() if s == "biomass" else len(self.plan.axis)
            )

    def progress(self, k: int, n_blocks: int) -> None:
        if n_blocks > 1 and (k + 1) % max(1, n_blocks // 10) == 0:
            dt = _time.perf_counter() - self.t0
            log.info(
                "block %d/%d: %d sites (%.0f sites/s)", k + 1, n_blocks, self.sites, self.sites / dt
            )

    def summary(self) -> None:
        plan = self.plan
        observed = ", ".join(
            f"{s} {100.0 * self.observed[s] / max(self.possible[s], 1):.1f}%" for s in plan.streams
        )
        varied = [n for n, v in zip(plan.model.table.names, plan.varying, strict=True) if v]
        log.info(
            "synthetic world: %d sites x %d %s steps (%s, seed %d) in %.1f s; observed: %s; "
            "parameters varying with the environment: %s",
            self.sites,
            len(plan.axis),
            plan.axis.step,
            plan.model.name,
            plan.seed,
            _time.perf_counter() - self.t0,
            observed,
            ", ".join(varied) or "none",
        )


def _iterate(plan: Plan, progress: bool) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """Yield ``(start, arrays)`` block by block, logging progress."""
    from tqdm.auto import tqdm

    blocks = plan.blocks
    log.info(
        "synthesizing %d %s sites x %d %s steps in %d block(s) of %d",
        plan.n_sites,
        plan.model.name,
        len(plan.axis),
        plan.axis.step,
        len(blocks),
        plan.block,
    )
    tally = _Tally(plan)
    bar = tqdm(total=plan.n_sites, unit="site", disable=not progress, desc="synthesize")
    try:
        for k, (a, b) in enumerate(blocks):
            arrays = _block(plan, a, b)
            tally.add(arrays)
            bar.update(b - a)
            if not progress:
                tally.progress(k, len(blocks))
            yield a, arrays
    finally:
        bar.close()
    tally.summary()


# -- public API -------------------------------------------------------------------------
def synthesize(
    n_sites: int,
    *,
    model: str | AbstractDalec = "dalec993",
    years: int = 10,
    start_year: int = 2001,
    seed: int = 0,
    relationship: Relationship | None = None,
    free_parameters: Sequence[str] | None = None,
    other_parameters: Literal["default", "random"] = "default",
    other_sd: float = 0.25,
    streams: Sequence[str] | None = None,
    noise: Mapping[str, NoiseSpec | tuple[float, float]] | None = None,
    gap_fraction: float | Mapping[str, float] = 0.3,
    site_split: tuple[float, float, float] = (0.8, 0.1, 0.1),
    train_years: int | None = None,
    resample_forcing_from: xr.Dataset | str | os.PathLike | None = None,
    include_truth: bool = True,
    block_size: int | None = None,
    progress: bool = False,
) -> xr.Dataset:
    """Generate a synthetic world with a known truth, in the canonical layout.

    Parameters
    ----------
    n_sites : int
        Number of sites.
    model : str or AbstractDalec
        ``"dalec993"`` (monthly steps) or ``"dalec990"`` (daily steps), or a model
        instance (its mode and water stress are used).
    years : int
        Calendar years simulated, from ``start_year``.
    start_year : int
        First calendar year.
    seed : int
        Non-negative seed; the same arguments give the same dataset bit for bit (on the
        same installation and platform).
    relationship : Relationship, optional
        Environment -> unconstrained parameter relationship; default
        :func:`~differland_bayes.synthetic.default_relationship`.
    free_parameters : sequence of str, optional
        Subset of the relationship's parameters that vary; the others of the table stay
        at their baseline (the default site's values). Default: all of them.
    other_parameters : {"default", "random"}
        Parameters outside the relationship: fixed at the baseline, or the baseline plus
        independent ``N(0, other_sd**2)`` deviations in z per site.
    other_sd : float
        Standard deviation of those deviations, unconstrained units.
    streams : sequence of str, optional
        Observation streams: any of ``gpp nee reco et lai biomass`` (and ``sif vod`` for
        dalec993). Default ``gpp nee et lai``.
    noise : mapping, optional
        Per-stream ``(relative, floor)`` overriding
        :data:`~differland_bayes.synthetic.DEFAULT_NOISE`: ``sd = relative * |truth| +
        floor`` (floor in the stream's units).
    gap_fraction : float or mapping
        Target fraction of missing values, for every stream or per stream (see
        :mod:`~differland_bayes.synthetic.observations`; for ``biomass`` the fraction of
        missing annual values). At most 0.95.
    site_split : tuple of float
        Fractions of ``train``, ``validation`` and ``test`` sites (``split_site``).
    train_years : int, optional
        Calendar years of ``split_time == 1`` (training); default ``ceil(years / 2)``.
    resample_forcing_from : xarray.Dataset or path, optional
        Canonical dataset whose forcing is resampled by calendar year instead of
        generating a climate (:class:`~differland_bayes.synthetic.resample.ForcingSource`).
    include_truth : bool
        Also write the noise-free series ``true_<stream>``.
    block_size : int, optional
        Sites simulated together (memory bound); default about 2**19 site-steps per
        block. Does not change the values.
    progress : bool
        Show a progress bar (tqdm) instead of logging progress.

    Returns
    -------
    xarray.Dataset
        Canonical dataset (``docs/data-format.md``): forcing, streams with ``_mask`` and
        ``_unc``, ``env``, ``split_time``, ``split_site``; plus the truth: ``true_z``,
        ``true_parameters``, ``true_z_residual`` (site x parameter), ``baseline_z``,
        ``parameter_varies``, the ``relationship_*`` coefficients and, with
        ``include_truth``, ``true_<stream>``. Attributes record the seed, model, mode,
        generator version, relationship and noise.

    Raises
    ------
    ValueError
        For invalid arguments (the message says which and why).
    """
    plan = make_plan(
        n_sites,
        model=model,
        years=years,
        start_year=start_year,
        seed=seed,
        relationship=relationship,
        free_parameters=free_parameters,
        other_parameters=other_parameters,
        other_sd=other_sd,
        streams=streams,
        noise=noise,
        gap_fraction=gap_fraction,
        site_split=site_split,
        train_years=train_years,
        resample_forcing_from=resample_forcing_from,
        include_truth=include_truth,
        block_size=block_size,
    )
    parts = [arrays for _, arrays in _iterate(plan, progress)]
    arrays = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return label(plan, arrays, 0, with_globals=True)


def synthesize_to_zarr(
    path: str | os.PathLike,
    n_sites: int = 50_000,
    *,
    overwrite: bool = False,
    **kwargs,
) -> Path:
    """Write a synthetic world to a Zarr store, block by block, atomically.

    Each block of ``block_size`` sites is generated, simulated and appended along
    ``site``, so memory stays bounded by one block whatever ``n_sites``. The store is
    written to a temporary directory next to ``path`` and renamed into place at the end;
    an interrupted run leaves ``path`` as it was. The values equal those of
    :func:`synthesize` with the same arguments.

    Parameters
    ----------
    path : path-like
        Target ``.zarr`` directory.
    n_sites : int
        Number of sites.
    overwrite : bool
        Replace an existing ``path``.
    **kwargs
        Any keyword argument of :func:`synthesize` (``years``, ``seed``, ``block_size``,
        ...).

    Returns
    -------
    pathlib.Path
        The written store.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False (checked before any work).
    ValueError
        If ``path`` does not end in ``.zarr``, or for invalid arguments.
    """
    path = Path(path)
    if path.suffix.lower() != ".zarr":
        raise ValueError(f"{path}: expected a .zarr path")
    check_can_write(path, overwrite=overwrite)
    progress = bool(kwargs.pop("progress", False))
    plan = make_plan(n_sites, **_plan_kwargs(kwargs))
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        store = tmp_dir / path.name
        for start, arrays in _iterate(plan, progress):
            first = start == 0
            ds = label(plan, arrays, start, with_globals=first)
            if first:
                ds.to_zarr(store, mode="w-", consolidated=False, encoding=encoding(ds, plan.block))
            else:
                ds.to_zarr(store, append_dim="site", consolidated=False)
        _move_into_place(store, path, overwrite=overwrite, trash=tmp_dir / "previous")
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    log.info("wrote %s", path)
    return path


def _plan_kwargs(kwargs: dict) -> dict:
    """Fill in the defaults of the keyword arguments of :func:`synthesize`."""
    import inspect

    params = inspect.signature(synthesize).parameters
    unknown = set(kwargs) - set(params) - {"n_sites"}
    if unknown:
        raise TypeError(f"synthesize_to_zarr() got unexpected keyword arguments {sorted(unknown)}")
    out = {
        k: p.default
        for k, p in params.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and k != "progress"
    }
    out.update(kwargs)
    return out


def _move_into_place(store: Path, path: Path, *, overwrite: bool, trash: Path) -> None:
    """Rename ``store`` to ``path``; an existing ``path`` is moved to ``trash`` first."""
    check_can_write(path, overwrite=overwrite)
    if path.exists():
        os.replace(path, trash)
        try:
            os.replace(store, path)
        except OSError:
            os.replace(trash, path)
            raise
    else:
        os.replace(store, path)
