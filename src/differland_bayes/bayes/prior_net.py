"""The environment -> parameter prior network ``f_phi`` (Equinox, no NumPyro).

A trunk MLP embeds a site's standardised environment; one linear head per parameter
group of the table (``process``, ``phenology``, ``initial_pool``; spec §3.2) maps the
embedding to the prior location of that group's unconstrained parameters, and the
heads' outputs are put back in table order. An optional scale head predicts a positive
per-parameter multiplier of the residual sd.

Initialisation is deterministic given the PRNG key: every weight matrix is drawn from
``Normal(0, 1 / fan_in)`` (the centre of the weight prior used in :mod:`.model`),
every bias is 0, and the scale head starts at exactly 1 (zero weights and biases),
so the initial network predicts ``z`` near 0 (the geometric mean of the bounds).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..params import ParamTable
from .config import ACTIVATIONS

__all__ = ["EnvPriorNet", "PriorNetOutput", "weight_prior_sd"]


class PriorNetOutput(NamedTuple):
    """Output of :class:`EnvPriorNet` for one site."""

    loc: jnp.ndarray  #: prior location of the unconstrained parameters, ``(P,)``
    scale: jnp.ndarray | None  #: positive multiplier of the residual sd ``(P,)``, or None


def _linear(in_size: int, out_size: int, key: jax.Array, *, zero: bool = False) -> eqx.nn.Linear:
    layer = eqx.nn.Linear(in_size, out_size, key=key)
    if zero:
        weight = jnp.zeros((out_size, in_size))
    else:
        weight = jax.random.normal(key, (out_size, in_size)) / math.sqrt(in_size)
    layer = eqx.tree_at(lambda m: m.weight, layer, weight)
    return eqx.tree_at(lambda m: m.bias, layer, jnp.zeros((out_size,)))


def weight_prior_sd(shape: tuple[int, ...], weight_scale: float, bias_scale: float) -> float:
    """Prior sd of a network array of the given shape.

    Parameters
    ----------
    shape : tuple of int
        ``(out, in)`` for a weight matrix, ``(out,)`` for a bias.
    weight_scale, bias_scale : float
        Weight matrices get ``weight_scale / sqrt(in)``; biases get ``bias_scale``.
    """
    if len(shape) >= 2:
        return weight_scale / math.sqrt(shape[-1])
    return bias_scale


class EnvPriorNet(eqx.Module):
    """Trunk MLP with one linear head per parameter group.

    Parameters
    ----------
    n_env : int
        Number of (standardised) environment predictors.
    table : ParamTable
        The parameters to predict, in output order (the free parameters of the model);
        one head per group present in it.
    hidden : sequence of int
        Widths of the trunk's layers (``()``: heads act on the environment directly).
    key : jax.Array
        PRNG key; the same key gives the same network.
    activation : str
        Trunk activation, one of ``leaky_relu``, ``relu``, ``tanh``, ``softplus``.
    negative_slope : float
        Slope of ``leaky_relu`` below 0.
    scale_head : bool
        Also build the scale head (``PriorNetOutput.scale``).
    scale_floor : float
        Lower bound of the scale multiplier, in ``(0, 1)``; the multiplier is
        ``scale_floor + softplus(a + c)`` with ``c`` such that ``a = 0`` gives 1.

    Notes
    -----
    Call on one site (``x`` of shape ``(n_env,)``) and ``jax.vmap`` over sites.
    """

    trunk: tuple[eqx.nn.Linear, ...]
    heads: tuple[eqx.nn.Linear, ...]
    scale_head: eqx.nn.Linear | None
    groups: tuple[str, ...] = eqx.field(static=True)
    names: tuple[str, ...] = eqx.field(static=True)
    order: tuple[int, ...] = eqx.field(static=True)
    n_env: int = eqx.field(static=True)
    activation: str = eqx.field(static=True)
    negative_slope: float = eqx.field(static=True)
    scale_floor: float = eqx.field(static=True)

    def __init__(
        self,
        n_env: int,
        table: ParamTable,
        hidden: tuple[int, ...] | list[int] = (32, 32, 32),
        *,
        key: jax.Array,
        activation: str = "leaky_relu",
        negative_slope: float = 0.01,
        scale_head: bool = False,
        scale_floor: float = 0.1,
    ) -> None:
        if n_env < 1:
            raise ValueError(f"n_env: expected at least 1 predictor, found {n_env}")
        if len(table) == 0:
            raise ValueError("table: expected at least one parameter to predict, found none")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation: expected one of {ACTIVATIONS}, found {activation!r}")
        if not 0.0 < scale_floor < 1.0:
            raise ValueError(f"scale_floor: expected a number in (0, 1), found {scale_floor!r}")
        hidden = tuple(int(h) for h in hidden)
        groups = table.groups
        keys = jax.random.split(key, len(hidden) + len(groups) + 1)
        widths = (n_env, *hidden)
        self.trunk = tuple(_linear(widths[i], widths[i + 1], keys[i]) for i in range(len(hidden)))
        members = [[i for i, r in enumerate(table) if r.group == g] for g in groups]
        self.heads = tuple(
            _linear(widths[-1], len(m), keys[len(hidden) + j]) for j, m in enumerate(members)
        )
        self.scale_head = (
            _linear(widths[-1], len(table), keys[-1], zero=True) if scale_head else None
        )
        concat = [i for m in members for i in m]  # table index of each concatenated output
        self.order = tuple(int(j) for j in np.argsort(concat))
        self.groups = groups
        self.names = table.names
        self.n_env = int(n_env)
        self.activation = activation
        self.negative_slope = float(negative_slope)
        self.scale_floor = float(scale_floor)

    @property
    def n_out(self) -> int:
        """Number of predicted parameters."""
        return len(self.names)

    def _act(self, h: jnp.ndarray) -> jnp.ndarray:
        if self.activation == "leaky_relu":
            return jax.nn.leaky_relu(h, self.negative_slope)
        if self.activation == "relu":
            return jax.nn.relu(h)
        if self.activation == "tanh":
            return jnp.tanh(h)
        return jax.nn.softplus(h)

    def embed(self, x: jnp.ndarray) -> jnp.ndarray:
        """Trunk embedding of one site's environment ``(n_env,)``."""
        h = x
        for layer in self.trunk:
            h = self._act(layer(h))
        return h

    def __call__(self, x: jnp.ndarray) -> PriorNetOutput:
        """Prior location (and scale multiplier) of one site's parameters.

        Parameters
        ----------
        x : jax.Array
            Standardised environment of one site, ``(n_env,)``.

        Returns
        -------
        PriorNetOutput
            ``loc`` ``(P,)`` in table order; ``scale`` ``(P,)`` or None.
        """
        if x.shape != (self.n_env,):
            raise ValueError(
                f"EnvPriorNet: expected one site's environment of shape ({self.n_env},) "
                f"(vmap over sites), found {x.shape}"
            )
        h = self.embed(x)
        loc = jnp.concatenate([head(h) for head in self.heads])[np.asarray(self.order)]
        scale = None
        if self.scale_head is not None:
            offset = math.log(math.expm1(1.0 - self.scale_floor))  # softplus^-1(1 - floor)
            scale = self.scale_floor + jax.nn.softplus(self.scale_head(h) + offset)
        return PriorNetOutput(loc=loc, scale=scale)
