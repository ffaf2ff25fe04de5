"""Neural-network hybrid components (spec §1.4 ``nn_paw`` and ``nn_whole``).

Both are pure JAX/Equinox modules; their weights are ordinary array fields, so
``eqx.filter(model, eqx.is_inexact_array)`` of a process model that holds one returns
exactly the network weights (and the Bayesian layer registers them, see
:func:`differland_bayes.bayes.model.hybrid_model`).

Architecture (spec §1.4, §3.2): dense layers, leaky-ReLU (negative slope 0.01) on the
hidden layers, linear output layer. Initialisation: weights Glorot-normal
(``jax.nn.initializers.glorot_normal``: truncated normal, variance ``2 / (fan_in +
fan_out)``), every bias 1, as in the published code.

* :class:`NeuralWaterStress` (``nn_paw``): ``beta = sigmoid(MLP(W / 1500))``, widths
  ``[1, 10, 1]`` (31 weights); used inside :class:`~.canopy.AcmCanopy`.
* :class:`NeuralCanopy` (``nn_whole``): ``(GPP, ET) = floor(MLP([Tz, LAI/8, SWz, W/1500,
  VPDz, CO2z]))`` with the leaky floor ``y = max(0.01 y, y)``, widths ``[6, 10, 10, 2]``
  (202 weights). The network outputs GPP (gC m-2 d-1) and ET (mm d-1) directly (no output
  rescaling). ``beta`` is undefined for this option (the published code writes -9999);
  here it is reported as 1.0 so that outputs stay finite — do not interpret it.
  ``Tz`` is the z-score of ``(t_min + t_max) / 2``; the means and standard deviations of
  T, SW, VPD and CO2 are static Python floats (never trainable), set by
  :meth:`NeuralCanopy.from_forcing`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from .canopy import AbstractCanopy, CanopyFluxes
from .water_stress import AbstractWaterStress

__all__ = [
    "NEGATIVE_SLOPE",
    "WATER_SCALE",
    "Dense",
    "NeuralCanopy",
    "NeuralCanopyDrivers",
    "NeuralWaterStress",
    "init_mlp",
    "mlp_forward",
]

#: plant-available-water input scale, mm ("WATER_POOL_SCALE")
WATER_SCALE = 1500.0
#: LAI input scale, m2 m-2
LAI_SCALE = 8.0
#: negative slope of the hidden leaky-ReLU and of the output floor
NEGATIVE_SLOPE = 0.01


class Dense(eqx.Module):
    """Affine layer ``y = x @ weight.T + bias`` acting on the last axis (any batch shape)."""

    weight: jnp.ndarray  #: (out, in)
    bias: jnp.ndarray  #: (out,)

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:  # noqa: D102
        return x @ self.weight.T + self.bias


def init_mlp(widths: Sequence[int], *, key: jax.Array) -> tuple[Dense, ...]:
    """Glorot-normal weights, biases 1, for consecutive widths ``[in, ..., out]``."""
    init = jax.nn.initializers.glorot_normal()
    keys = jax.random.split(key, len(widths) - 1)
    return tuple(
        Dense(
            weight=init(k, (n_out, n_in)),
            bias=jnp.ones((n_out,)),
        )
        for k, n_in, n_out in zip(keys, widths[:-1], widths[1:], strict=True)
    )


def mlp_forward(layers: Sequence[Dense], x: jnp.ndarray) -> jnp.ndarray:
    """Leaky-ReLU hidden layers, linear output layer; ``x`` has features on the last axis."""
    for layer in layers[:-1]:
        x = jax.nn.leaky_relu(layer(x), NEGATIVE_SLOPE)
    return layers[-1](x)


def _n_weights(layers: Sequence[Dense]) -> int:
    return sum(layer.weight.size + layer.bias.size for layer in layers)


class NeuralWaterStress(AbstractWaterStress):
    """``beta = sigmoid(MLP(W / 1500))`` (spec §1.4 ``nn_paw``), widths ``[1, 10, 1]``.

    Parameters
    ----------
    key : jax.Array
        PRNG key of the initial weights.
    hidden : sequence of int
        Hidden widths (default ``(10,)``: 31 weights).
    """

    layers: tuple[Dense, ...]

    def __init__(self, *, key: jax.Array, hidden: Sequence[int] = (10,)) -> None:
        self.layers = init_mlp((1, *hidden, 1), key=key)

    @property
    def n_weights(self) -> int:
        """Number of trainable scalars."""
        return _n_weights(self.layers)

    def beta(self, water: ArrayLike, params) -> jnp.ndarray:  # noqa: D102
        x = jnp.asarray(water)[..., None] / WATER_SCALE
        return jax.nn.sigmoid(mlp_forward(self.layers, x))[..., 0]


class NeuralCanopyDrivers(NamedTuple):
    """Standardised forcing inputs of :class:`NeuralCanopy` (time-leading)."""

    tz: jnp.ndarray  #: z-scored (t_min + t_max) / 2
    swz: jnp.ndarray  #: z-scored shortwave radiation
    vpdz: jnp.ndarray  #: z-scored VPD
    co2z: jnp.ndarray  #: z-scored CO2


def _mean_sd(x: ArrayLike) -> tuple[float, float]:
    a = np.asarray(x, dtype=np.float64)
    mean = float(np.nanmean(a))
    sd = float(np.nanstd(a))
    return mean, (sd if np.isfinite(sd) and sd > 0 else 1.0)


class NeuralCanopy(AbstractCanopy):
    """GPP and ET from one network (spec §1.4 ``nn_whole``), widths ``[6, 10, 10, 2]``.

    Inputs ``[Tz, LAI/8, SWz, W/1500, VPDz, CO2z]``; outputs floored by
    ``y = max(0.01 y, y)``; ``beta`` reported as 1.0 (undefined for this option).

    Parameters
    ----------
    key : jax.Array
        PRNG key of the initial weights.
    t_mean, t_sd, sw_mean, sw_sd, vpd_mean, vpd_sd, co2_mean, co2_sd : float
        Standardisation constants (static, non-trainable); see :meth:`from_forcing`.
    hidden : sequence of int
        Hidden widths (default ``(10, 10)``: 202 weights).
    """

    layers: tuple[Dense, ...]
    t_mean: float = eqx.field(static=True)
    t_sd: float = eqx.field(static=True)
    sw_mean: float = eqx.field(static=True)
    sw_sd: float = eqx.field(static=True)
    vpd_mean: float = eqx.field(static=True)
    vpd_sd: float = eqx.field(static=True)
    co2_mean: float = eqx.field(static=True)
    co2_sd: float = eqx.field(static=True)

    def __init__(
        self,
        *,
        key: jax.Array,
        t_mean: float = 0.0,
        t_sd: float = 1.0,
        sw_mean: float = 0.0,
        sw_sd: float = 1.0,
        vpd_mean: float = 0.0,
        vpd_sd: float = 1.0,
        co2_mean: float = 0.0,
        co2_sd: float = 1.0,
        hidden: Sequence[int] = (10, 10),
    ) -> None:
        self.layers = init_mlp((6, *hidden, 2), key=key)
        for name, value in (
            ("t_sd", t_sd),
            ("sw_sd", sw_sd),
            ("vpd_sd", vpd_sd),
            ("co2_sd", co2_sd),
        ):
            if not float(value) > 0:
                raise ValueError(f"{name}: expected a positive standard deviation, found {value!r}")
        self.t_mean, self.t_sd = float(t_mean), float(t_sd)
        self.sw_mean, self.sw_sd = float(sw_mean), float(sw_sd)
        self.vpd_mean, self.vpd_sd = float(vpd_mean), float(vpd_sd)
        self.co2_mean, self.co2_sd = float(co2_mean), float(co2_sd)

    @classmethod
    def from_forcing(
        cls, forcing, *, key: jax.Array, hidden: Sequence[int] = (10, 10)
    ) -> NeuralCanopy:
        """Build with standardisation constants from a forcing series.

        Parameters
        ----------
        forcing : NamedTuple
            A model's ``Forcing`` (any leading shape) with fields ``t_min``, ``t_max``,
            ``swrad``, ``vpd``, ``co2``; means and (population) sds over all entries,
            NaN ignored; a zero sd is replaced by 1.
        key : jax.Array
            PRNG key of the initial weights.
        """
        t_mean, t_sd = _mean_sd(0.5 * (np.asarray(forcing.t_min) + np.asarray(forcing.t_max)))
        sw_mean, sw_sd = _mean_sd(forcing.swrad)
        vpd_mean, vpd_sd = _mean_sd(forcing.vpd)
        co2_mean, co2_sd = _mean_sd(forcing.co2)
        return cls(
            key=key,
            t_mean=t_mean,
            t_sd=t_sd,
            sw_mean=sw_mean,
            sw_sd=sw_sd,
            vpd_mean=vpd_mean,
            vpd_sd=vpd_sd,
            co2_mean=co2_mean,
            co2_sd=co2_sd,
            hidden=hidden,
        )

    @property
    def n_weights(self) -> int:
        """Number of trainable scalars."""
        return _n_weights(self.layers)

    def prepare(self, forcing) -> NeuralCanopyDrivers:  # noqa: D102
        t = 0.5 * (forcing.t_min + forcing.t_max)
        return NeuralCanopyDrivers(
            tz=(t - self.t_mean) / self.t_sd,
            swz=(forcing.swrad - self.sw_mean) / self.sw_sd,
            vpdz=(forcing.vpd - self.vpd_mean) / self.vpd_sd,
            co2z=(forcing.co2 - self.co2_mean) / self.co2_sd,
        )

    def fluxes(self, lai, water, drv: NeuralCanopyDrivers, params) -> CanopyFluxes:  # noqa: D102
        lai = jnp.asarray(lai)
        water = jnp.asarray(water)
        x = jnp.stack(
            jnp.broadcast_arrays(
                drv.tz, lai / LAI_SCALE, drv.swz, water / WATER_SCALE, drv.vpdz, drv.co2z
            ),
            axis=-1,
        )
        y = mlp_forward(self.layers, x)
        y = jnp.maximum(NEGATIVE_SLOPE * y, y)
        gpp, et = y[..., 0], y[..., 1]
        return CanopyFluxes(gpp=gpp, et=et, beta=jnp.ones_like(gpp))
