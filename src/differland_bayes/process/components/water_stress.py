"""Water-stress factors on GPP (spec §1.3b, §1.4).

A water-stress strategy is a small :class:`equinox.Module` with one method,
``beta(water, params)`` returning the factor in ``[0, 1]`` that multiplies potential GPP.
A neural-network factor (spec §1.4 ``nn_paw``) is another subclass with its weights as
fields; nothing else in the process model changes.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax.numpy as jnp
from jax.typing import ArrayLike

__all__ = ["AbstractWaterStress", "LinearWaterStress", "NoWaterStress"]


class AbstractWaterStress(eqx.Module):
    """Interface of a water-stress factor."""

    @abc.abstractmethod
    def beta(self, water: ArrayLike, params) -> jnp.ndarray:
        """Water-stress factor, 1, from plant-available water (mm) and the parameters."""


class LinearWaterStress(AbstractWaterStress):
    """Linear ramp between wilting point and field capacity (published ``default``).

    ``beta = clip((W - WP) / (FC - WP), 0, 1)`` with ``WP = FC * wilting_point_frac``;
    uses ``params.field_capacity`` (mm) and ``params.wilting_point_frac`` (1).
    """

    def beta(self, water: ArrayLike, params) -> jnp.ndarray:  # noqa: D102
        fc = params.field_capacity
        wp = fc * params.wilting_point_frac
        return jnp.clip((water - wp) / (fc - wp), 0.0, 1.0)


class NoWaterStress(AbstractWaterStress):
    """No water stress, ``beta = 1`` (published ``nothing`` / ``baseline``)."""

    def beta(self, water: ArrayLike, params) -> jnp.ndarray:  # noqa: D102
        return jnp.ones_like(jnp.asarray(water))
