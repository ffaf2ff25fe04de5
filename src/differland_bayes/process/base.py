"""The interface every DALEC variant implements, and the mode switch."""

from __future__ import annotations

import abc
from typing import Any, ClassVar, Literal

import equinox as eqx
import jax.numpy as jnp
from jax.typing import ArrayLike

from ..params import ParamTable

__all__ = ["MODES", "AbstractDalec", "Mode"]

Mode = Literal["faithful", "conserving"]
MODES: tuple[str, ...] = ("faithful", "conserving")


class AbstractDalec(eqx.Module):
    """A DALEC process model: a time-parallel ``prepare`` and a sequential ``step``.

    Subclasses are final and declare, as class variables, their parameter table and the
    NamedTuple types of forcing, parameters, pools and outputs. Fields of the instance
    are the exchangeable components (canopy, water stress) and the numerical ``mode``.

    Attributes
    ----------
    mode : {"faithful", "conserving"}
        ``"faithful"`` reproduces the published numerics, quirks included;
        ``"conserving"`` fixes the mass-balance defects of spec §8 items 6-9.
    """

    mode: str = eqx.field(static=True, default="faithful")

    name: ClassVar[str]
    table: ClassVar[ParamTable]
    Forcing: ClassVar[type]
    Params: ClassVar[type]
    Pools: ClassVar[type]
    Outputs: ClassVar[type]

    def __check_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, found {self.mode!r}")

    @property
    def conserving(self) -> bool:
        """True in the conserving mode."""
        return self.mode == "conserving"

    @abc.abstractmethod
    def prepare(self, params: Any, forcing: Any) -> Any:
        """Compute forcing- and parameter-only quantities for the whole series (time-leading)."""

    @abc.abstractmethod
    def step(self, pools: Any, drivers_t: Any, params: Any) -> tuple[Any, Any]:
        """Advance the state by one step; returns ``(pools_next, outputs)``."""

    # -- conversions between flat vectors and named structures -------------------------
    def split(self, theta: ArrayLike) -> tuple[Any, Any]:
        """Split a physical vector ordered as :attr:`table` into ``(Params, Pools)``.

        Parameters
        ----------
        theta : array_like
            Physical values, last axis of length ``len(table)``.
        """
        theta = jnp.asarray(theta)
        n_par = len(self.Params._fields)
        if theta.shape[-1:] != (len(self.table),):
            raise ValueError(
                f"{self.name}: expected a last axis of length {len(self.table)} "
                f"(parameters then initial pools, see {self.name} table), found {theta.shape}"
            )
        params = self.Params(*(theta[..., i] for i in range(n_par)))
        pools = self.Pools(*(theta[..., n_par + i] for i in range(len(self.Pools._fields))))
        return params, pools

    def from_unconstrained(self, z: ArrayLike) -> tuple[Any, Any]:
        """Bounded transform of an unconstrained vector, then :meth:`split`."""
        return self.split(self.table.to_physical(z))

    def forcing_from_matrix(self, met: ArrayLike) -> Any:
        """Build the forcing from a matrix whose columns follow the published ``met`` order."""
        met = jnp.asarray(met)
        n = len(self.Forcing._fields)
        if met.shape[-1] < n:
            raise ValueError(
                f"{self.name}: forcing matrix needs {n} columns "
                f"({', '.join(self.Forcing._fields)}), found shape {met.shape}"
            )
        return self.Forcing(*(met[..., i] for i in range(n)))
