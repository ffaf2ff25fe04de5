"""Save and restore pytrees of JAX arrays (an SVI state, parameters) to ``.npz`` files.

A checkpoint holds named pytrees (stored as their flattened leaves), named plain arrays
and a JSON metadata record. No pickle is involved: the tree *structure* is not stored,
it comes back from a template (for an SVI state, a freshly initialised state of the same
model, guide and optimizer), against which the number, shapes and dtypes of the leaves
are checked. Typed PRNG keys (``jax.random.key``) are stored as their key data and
re-wrapped with the template's implementation.

Writes are atomic (temporary file in the same directory, then :func:`os.replace`), so an
interrupted run always leaves the previous complete checkpoint behind.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..io.atomic import atomic_path

__all__ = ["CHECKPOINT_FORMAT", "Checkpoint", "load_checkpoint", "restore_tree", "save_checkpoint"]

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1  #: version of the on-disk layout written by :func:`save_checkpoint`

_META_KEY = "__meta__"
_SEP = "/"


class Checkpoint(NamedTuple):
    """The contents of a checkpoint file, as host (NumPy) arrays."""

    leaves: dict[str, list[np.ndarray]]  #: flattened leaves of each stored pytree
    key_leaves: dict[str, list[int]]  #: per tree, indices of leaves that were typed PRNG keys
    arrays: dict[str, np.ndarray]  #: plain named arrays
    meta: dict[str, Any]  #: JSON metadata


def _is_typed_key(x: Any) -> bool:
    dtype = getattr(x, "dtype", None)
    return dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)


def save_checkpoint(
    path: str | os.PathLike,
    *,
    trees: Mapping[str, Any] | None = None,
    arrays: Mapping[str, Any] | None = None,
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write pytrees, arrays and metadata to one ``.npz`` file, atomically.

    An existing file at ``path`` is replaced (a checkpoint is meant to be overwritten as
    a run progresses; refusing to clobber someone else's files is the caller's job).

    Parameters
    ----------
    path : path-like
        Target file; should end in ``.npz``.
    trees : mapping of str to pytree, optional
        Pytrees of arrays (JAX or NumPy, typed PRNG keys allowed) to store by name.
    arrays : mapping of str to array-like, optional
        Plain arrays to store by name.
    meta : mapping, optional
        JSON-serialisable metadata.

    Returns
    -------
    pathlib.Path
        The written path.

    Raises
    ------
    ValueError
        If a name contains ``"/"`` or is used twice.
    """
    trees = dict(trees or {})
    arrays = dict(arrays or {})
    for name in [*trees, *arrays]:
        if _SEP in name or name == _META_KEY:
            raise ValueError(f"invalid checkpoint entry name {name!r}")
    if set(trees) & set(arrays):
        raise ValueError(f"names used both as tree and array: {sorted(set(trees) & set(arrays))}")

    out: dict[str, np.ndarray] = {}
    tree_info: dict[str, dict[str, Any]] = {}
    for name, tree in trees.items():
        leaves = jax.tree.leaves(tree)
        key_idx = [i for i, leaf in enumerate(leaves) if _is_typed_key(leaf)]
        host = jax.device_get(
            [jax.random.key_data(leaf) if i in key_idx else leaf for i, leaf in enumerate(leaves)]
        )
        for i, leaf in enumerate(host):
            out[f"{name}{_SEP}{i:06d}"] = np.asarray(leaf)
        tree_info[name] = {"num_leaves": len(leaves), "typed_keys": key_idx}
    for name, arr in arrays.items():
        out[name] = np.asarray(jax.device_get(arr))
    record = {"format": CHECKPOINT_FORMAT, "trees": tree_info, "meta": dict(meta or {})}
    out[_META_KEY] = np.asarray(json.dumps(record))

    path = Path(path)
    with atomic_path(path, overwrite=True) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **out)
    log.debug("saved checkpoint %s", path)
    return path


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a file written by :func:`save_checkpoint`.

    Parameters
    ----------
    path : path-like
        The ``.npz`` checkpoint.

    Returns
    -------
    Checkpoint
        Leaves of the stored trees, plain arrays and metadata (host arrays).

    Raises
    ------
    ValueError
        If the file is not a checkpoint of a known format.
    """
    path = Path(path)
    with np.load(path, allow_pickle=False) as npz:
        if _META_KEY not in npz.files:
            raise ValueError(f"{path} is not a differland_bayes checkpoint (no metadata record)")
        record = json.loads(str(npz[_META_KEY]))
        if record.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(
                f"{path} has checkpoint format {record.get('format')!r}; this version reads "
                f"format {CHECKPOINT_FORMAT}"
            )
        leaves: dict[str, list[np.ndarray]] = {}
        key_leaves: dict[str, list[int]] = {}
        for name, info in record["trees"].items():
            leaves[name] = [npz[f"{name}{_SEP}{i:06d}"] for i in range(info["num_leaves"])]
            key_leaves[name] = list(info["typed_keys"])
        arrays = {k: npz[k] for k in npz.files if _SEP not in k and k != _META_KEY}
    return Checkpoint(leaves=leaves, key_leaves=key_leaves, arrays=arrays, meta=record["meta"])


def restore_tree(ckpt: Checkpoint, name: str, template: Any) -> Any:
    """Rebuild the stored tree ``name`` with the structure of ``template``.

    Parameters
    ----------
    ckpt : Checkpoint
        A loaded checkpoint.
    name : str
        Which stored tree.
    template : pytree
        A pytree with the expected structure, shapes and dtypes (e.g. a freshly
        initialised SVI state of the same model, guide and optimizer).

    Returns
    -------
    pytree
        The stored values as JAX arrays, in the template's structure.

    Raises
    ------
    KeyError
        If the checkpoint holds no tree ``name``.
    ValueError
        If the number, shapes or dtypes of the leaves do not match the template.
    """
    if name not in ckpt.leaves:
        raise KeyError(f"checkpoint holds no tree {name!r} (has {sorted(ckpt.leaves)})")
    stored = ckpt.leaves[name]
    key_idx = set(ckpt.key_leaves.get(name, []))
    tmpl_leaves, treedef = jax.tree.flatten(template)
    if len(stored) != len(tmpl_leaves):
        raise ValueError(
            f"checkpoint tree {name!r} has {len(stored)} leaves but the current setup has "
            f"{len(tmpl_leaves)}: was it written by a different model, guide or optimizer?"
        )
    restored = []
    for i, (value, tmpl) in enumerate(zip(stored, tmpl_leaves, strict=True)):
        if _is_typed_key(tmpl):
            if i not in key_idx:
                raise ValueError(f"checkpoint tree {name!r} leaf {i}: expected a typed PRNG key")
            key = jax.random.wrap_key_data(value, impl=jax.random.key_impl(tmpl))
            if key.shape != tmpl.shape:
                raise ValueError(f"checkpoint tree {name!r} leaf {i}: key shape mismatch")
            restored.append(key)
            continue
        if i in key_idx:
            raise ValueError(f"checkpoint tree {name!r} leaf {i}: unexpected typed PRNG key")
        shape, dtype = np.shape(tmpl), jnp.result_type(tmpl)
        if value.shape != shape or value.dtype != dtype:
            raise ValueError(
                f"checkpoint tree {name!r} leaf {i}: stored {value.dtype}{list(value.shape)}, "
                f"expected {dtype}{list(shape)}: was it written by a different model, guide "
                f"or optimizer (or with another jax_enable_x64 setting)?"
            )
        restored.append(jnp.asarray(value))
    return jax.tree.unflatten(treedef, restored)
