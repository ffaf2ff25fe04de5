"""Per-site random streams: the same site gets the same numbers whatever the blocking.

Every random number of a synthetic world comes from a JAX key derived from
``(seed, stage, site index)``: the seed is expanded with :class:`numpy.random.SeedSequence`
into a threefry key, each generation stage (``"environment"``, ``"climate"``,
``"noise"``...) folds in a fixed number derived from its name, and each site folds in its
global index. The numbers drawn for site ``i`` therefore do not depend on how many sites
are generated, in which block, or in which order, which is what makes the block-by-block
Zarr writer produce the in-memory dataset exactly. Draws are float32 whatever
``jax_enable_x64`` says, so the output does not change with that flag.
"""

from __future__ import annotations

import zlib
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["SiteRandom", "check_seed"]

_MAX_SITE_INDEX = 2**32 - 1


def check_seed(seed: object) -> int:
    """Return ``seed`` as a non-negative ``int``; raise ``ValueError`` otherwise."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer, found {seed!r}")
    return int(seed)


def _stage_id(stage: str) -> int:
    """Return a stable 31-bit number for a stage name (CRC-32, not Python's ``hash``)."""
    return zlib.crc32(stage.encode()) & 0x7FFFFFFF


@partial(jax.jit, static_argnames=("shape", "kind"))
def _draw(root: jax.Array, stage: jax.Array, sites: jax.Array, shape: tuple[int, ...], kind: str):
    key = jax.random.fold_in(root, stage)
    keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, sites)
    if kind == "normal":
        return jax.vmap(lambda k: jax.random.normal(k, shape, jnp.float32))(keys)
    return jax.vmap(lambda k: jax.random.uniform(k, shape, jnp.float32))(keys)


class SiteRandom:
    """Random numbers keyed by ``(seed, stage, site)``.

    Parameters
    ----------
    seed : int
        Non-negative seed of the whole world.
    """

    def __init__(self, seed: int):
        self.seed = check_seed(seed)
        words = np.random.SeedSequence(self.seed).generate_state(2, dtype=np.uint32)
        self._root = jax.random.wrap_key_data(jnp.asarray(words), impl="threefry2x32")

    def _sites(self, sites: np.ndarray) -> jax.Array:
        sites = np.asarray(sites)
        if sites.ndim != 1 or (sites.size and (sites.min() < 0 or sites.max() > _MAX_SITE_INDEX)):
            raise ValueError("site indices must be a 1-d array of integers in [0, 2**32)")
        return jnp.asarray(sites.astype(np.uint32))

    def normal(self, stage: str, sites: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """Draw standard normals of shape ``(len(sites), *shape)`` (float32 values, float64)."""
        out = _draw(self._root, _stage_id(stage), self._sites(sites), tuple(shape), "normal")
        return np.asarray(out, dtype=np.float64)

    def uniform(self, stage: str, sites: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """Draw uniforms in ``(0, 1)`` of shape ``(len(sites), *shape)`` (float64).

        Zeros of the float32 generator are replaced by the smallest positive float32 so
        that ``log(u)`` is always finite.
        """
        out = _draw(self._root, _stage_id(stage), self._sites(sites), tuple(shape), "uniform")
        return np.maximum(np.asarray(out, dtype=np.float64), np.finfo(np.float32).tiny)

    def generator(self, stage: str) -> np.random.Generator:
        """Return a NumPy generator for draws about the whole world (not one site)."""
        return np.random.default_rng([self.seed, _stage_id(stage)])
