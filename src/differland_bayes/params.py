"""Parameter tables: the one place for parameter names, bounds, units and meanings.

Every process model owns one :class:`ParamTable` that lists, in order, its process
parameters, its phenology parameters (if any) and its initial pools. The bounds feed the
bounded transform of the published model (spec §3.1), the network output sizes, the
documentation tables and the coordinates of ArviZ output, so they are never typed twice.

The bounded transform maps an unconstrained value ``z`` to a physical value ``theta``
within ``[lower, upper]``::

    u     = arctan(z) / pi + 0.5             in (0, 1)
    theta = lower * (upper / lower) ** u      log-uniform interpolation

and back with ``z = tan(pi * (log(theta / lower) / log(upper / lower) - 0.5))``. ``z = 0``
gives the geometric mean of the bounds.

A row with a ``period`` (the phenology phases ``Bday`` / ``Fday``: a process model uses
them only modulo 365.25 d) may instead use the **periodic transform**
(``transform="periodic"``, see :meth:`ParamTable.with_periodic_transform`), in which
``z`` is the phase angle in radians around the row's default ``c``::

    theta = c - period / 2 + mod(period * z / (2 pi) + period / 2, period)

so that ``theta`` stays within one period centred on ``c`` (inside the bounds) and the
model outputs are smooth and ``2 pi``-periodic in ``z``. A normal distribution of ``z``
is then a wrapped normal on the circle of phases; the bounded transform instead
spreads the phase over ``(upper - lower) / period`` windings with one mode per winding
(spec §8, item 4).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

__all__ = [
    "ParamInfo",
    "ParamTable",
    "to_physical",
    "to_physical_numpy",
    "to_physical_periodic",
    "to_unconstrained",
    "to_unconstrained_periodic",
]

GROUPS = ("process", "phenology", "initial_pool")
TRANSFORMS = ("bounded", "periodic")


@dataclass(frozen=True)
class ParamInfo:
    """One row of a parameter table.

    Parameters
    ----------
    name : str
        Identifier, as in the published code (also the NamedTuple field name).
    lower, upper : float
        Bounds of the physical value (``0 < lower < upper``); the bounded transform maps
        the real line onto ``(lower, upper)``.
    units : str
        Units of the physical value (``"1"`` for dimensionless).
    description : str
        One-line meaning.
    group : str
        ``"process"``, ``"phenology"`` or ``"initial_pool"``; the published global model
        predicts each group with its own network head.
    period : float or None
        For a parameter that the process model uses only modulo ``period`` (a phase), the
        period in the parameter's units (365.25 d for ``Bday`` / ``Fday``); None otherwise.
    transform : str
        ``"bounded"`` (the published transform, default) or ``"periodic"`` (needs a
        ``period`` no longer than ``upper - lower``); see the module docstring.
    """

    name: str
    lower: float
    upper: float
    units: str
    description: str
    group: str = "process"
    period: float | None = None
    transform: str = "bounded"

    def __post_init__(self) -> None:
        if not (0.0 < self.lower < self.upper) or not math.isfinite(self.upper):
            raise ValueError(
                f"parameter {self.name!r}: bounds must satisfy 0 < lower < upper < inf, "
                f"found lower={self.lower!r}, upper={self.upper!r}"
            )
        if self.group not in GROUPS:
            raise ValueError(
                f"parameter {self.name!r}: group must be one of {GROUPS}, found {self.group!r}"
            )
        if self.period is not None and not (
            math.isfinite(self.period) and 0.0 < self.period <= self.upper - self.lower
        ):
            raise ValueError(
                f"parameter {self.name!r}: period must be positive and at most upper - lower "
                f"= {self.upper - self.lower:g} {self.units}, found {self.period!r}"
            )
        if self.transform not in TRANSFORMS:
            raise ValueError(
                f"parameter {self.name!r}: transform must be one of {TRANSFORMS}, "
                f"found {self.transform!r}"
            )
        if self.transform == "periodic" and self.period is None:
            raise ValueError(
                f"parameter {self.name!r}: transform 'periodic' needs a period, found None"
            )

    @property
    def default(self) -> float:
        """Physical value at ``z = 0`` (geometric mean of the bounds)."""
        return math.sqrt(self.lower * self.upper)


def to_physical(z: ArrayLike, lower: ArrayLike, upper: ArrayLike) -> jnp.ndarray:
    """Map unconstrained values to physical values inside ``(lower, upper)``.

    Parameters
    ----------
    z : array_like
        Unconstrained values (any real number; network outputs in the published model).
    lower, upper : array_like
        Bounds, broadcastable against ``z``, in the units of the physical value.

    Returns
    -------
    jax.Array
        ``lower * (upper / lower) ** (arctan(z) / pi + 0.5)``, same units as the bounds.
    """
    u = jnp.arctan(jnp.asarray(z)) / jnp.pi + 0.5
    return lower * (upper / lower) ** u


def to_physical_periodic(z: ArrayLike, center: ArrayLike, period: ArrayLike) -> jnp.ndarray:
    """Periodic transform: phase angle ``z`` (rad) to a value within one period.

    Parameters
    ----------
    z : array_like
        Phase angle relative to ``center``, rad (any real number).
    center, period : array_like
        Value at ``z = 0`` and the period, in the units of the physical value.

    Returns
    -------
    jax.Array
        ``center - period / 2 + mod(period * z / (2 pi) + period / 2, period)``, in
        ``[center - period / 2, center + period / 2)``.
    """
    return (
        center
        - 0.5 * period
        + jnp.mod(period * jnp.asarray(z) / (2.0 * jnp.pi) + 0.5 * period, period)
    )


def to_unconstrained_periodic(
    theta: ArrayLike, center: ArrayLike, period: ArrayLike
) -> jnp.ndarray:
    """Inverse of :func:`to_physical_periodic`: the phase angle in ``[-pi, pi)`` rad."""
    delta = jnp.mod(jnp.asarray(theta) - center + 0.5 * period, period) - 0.5 * period
    return 2.0 * jnp.pi * delta / period


def to_physical_numpy(z: Any, lower: Any, upper: Any) -> np.ndarray:
    """:func:`to_physical` in NumPy, in the inputs' precision (float64 for NumPy floats).

    For code that works outside JAX (synthetic worlds, comparisons with a known truth),
    where JAX's default float32 would round the result.
    """
    z = np.asarray(z)
    return lower * (upper / lower) ** (np.arctan(z) / np.pi + 0.5)


def to_unconstrained(theta: ArrayLike, lower: ArrayLike, upper: ArrayLike) -> jnp.ndarray:
    """Inverse of :func:`to_physical`.

    Parameters
    ----------
    theta : array_like
        Physical values strictly inside ``(lower, upper)``.
    lower, upper : array_like
        Bounds, broadcastable against ``theta``.

    Returns
    -------
    jax.Array
        ``tan(pi * (log(theta / lower) / log(upper / lower) - 0.5))``; values on or
        outside a bound give ``±inf`` or NaN.
    """
    theta = jnp.asarray(theta)
    u = jnp.log(theta / lower) / jnp.log(jnp.asarray(upper) / jnp.asarray(lower))
    return jnp.tan(jnp.pi * (u - 0.5))


class ParamTable:
    """An ordered table of :class:`ParamInfo` rows.

    Parameters
    ----------
    rows : iterable of ParamInfo
        The rows, in the order of the model's parameter vector. Names must be unique.

    Notes
    -----
    The order of the rows of each group equals the field order of the NamedTuple the
    model uses for that group (checked by the tests), so :meth:`unflatten` and
    :meth:`flatten` are the only place where a vector position meets a name.
    """

    def __init__(self, rows: Iterable[ParamInfo]):
        self.rows: tuple[ParamInfo, ...] = tuple(rows)
        names = [r.name for r in self.rows]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"parameter names must be unique; duplicated: {dupes}")
        self._index = {r.name: i for i, r in enumerate(self.rows)}
        self._periodic = np.array([r.transform == "periodic" for r in self.rows], dtype=bool)

    # -- basic access ---------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, name: str) -> ParamInfo:
        try:
            return self.rows[self._index[name]]
        except KeyError:
            raise KeyError(f"unknown parameter {name!r}; available: {list(self._index)}") from None

    def __repr__(self) -> str:
        return f"ParamTable({len(self)} rows: {', '.join(self.names)})"

    @property
    def names(self) -> tuple[str, ...]:
        """Parameter names in vector order."""
        return tuple(r.name for r in self.rows)

    @property
    def lower(self) -> np.ndarray:
        """Lower bounds as a float64 NumPy array."""
        return np.array([r.lower for r in self.rows], dtype=np.float64)

    @property
    def upper(self) -> np.ndarray:
        """Upper bounds as a float64 NumPy array."""
        return np.array([r.upper for r in self.rows], dtype=np.float64)

    @property
    def units(self) -> tuple[str, ...]:
        """Units in vector order."""
        return tuple(r.units for r in self.rows)

    @property
    def default(self) -> np.ndarray:
        """Physical values at ``z = 0`` (geometric means of the bounds)."""
        return np.sqrt(self.lower * self.upper)

    def group(self, group: str) -> ParamTable:
        """Return the sub-table of one group (``process``, ``phenology``, ``initial_pool``)."""
        if group not in GROUPS:
            raise ValueError(f"group must be one of {GROUPS}, found {group!r}")
        return ParamTable(r for r in self.rows if r.group == group)

    @property
    def groups(self) -> tuple[str, ...]:
        """The groups present, in table order."""
        seen: list[str] = []
        for r in self.rows:
            if r.group not in seen:
                seen.append(r.group)
        return tuple(seen)

    # -- transforms -----------------------------------------------------------------
    def _bounds(self, x: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
        if x.shape[-1:] != (len(self),):
            raise ValueError(
                f"expected a last axis of length {len(self)} (one entry per parameter of "
                f"{self!r}), found shape {tuple(x.shape)}"
            )
        dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.result_type(float)
        return jnp.asarray(self.lower, dtype=dtype), jnp.asarray(self.upper, dtype=dtype)

    @property
    def periodic(self) -> np.ndarray:
        """Boolean mask of the rows that use the periodic transform (a copy)."""
        return self._periodic.copy()

    def with_periodic_transform(self) -> ParamTable:
        """Return the table with every row that has a ``period`` on the periodic transform.

        Returns
        -------
        ParamTable
            Same names, bounds and order; rows with a ``period`` get
            ``transform="periodic"`` (``z`` becomes a phase angle in radians around the
            row's default), the others are unchanged.
        """
        return ParamTable(
            replace(r, transform="periodic") if r.period is not None else r for r in self.rows
        )

    def _periodic_args(self, dtype: Any) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
        mask = jnp.asarray(self._periodic)
        center = jnp.asarray(self.default, dtype=dtype)
        period = jnp.asarray([r.period or 1.0 for r in self.rows], dtype=dtype)
        return mask, center, period

    def to_physical(self, z: ArrayLike) -> jnp.ndarray:
        """Transform unconstrained vectors to physical values, last axis = parameters.

        The bounded transform, or the periodic one for rows with
        ``transform="periodic"``.
        """
        z = jnp.asarray(z)
        lo, hi = self._bounds(z)
        theta = to_physical(z, lo, hi)
        if self._periodic.any():
            mask, center, period = self._periodic_args(theta.dtype)
            theta = jnp.where(mask, to_physical_periodic(z, center, period), theta)
        return theta

    def to_unconstrained(self, theta: ArrayLike) -> jnp.ndarray:
        """Inverse of :meth:`to_physical`, last axis = parameters.

        A periodic row accepts any value within its bounds and returns the angle of its
        phase, in ``[-pi, pi)``.
        """
        theta = jnp.asarray(theta)
        lo, hi = self._bounds(theta)
        z = to_unconstrained(theta, lo, hi)
        if self._periodic.any():
            mask, center, period = self._periodic_args(z.dtype)
            z = jnp.where(mask, to_unconstrained_periodic(theta, center, period), z)
        return z

    def check_physical(self, theta: ArrayLike, *, what: str = "parameters") -> None:
        """Raise ``ValueError`` naming every value outside its bounds (host-side check)."""
        arr = np.asarray(theta, dtype=np.float64)
        if arr.shape[-1:] != (len(self),):
            raise ValueError(
                f"{what}: expected a last axis of length {len(self)}, found shape {arr.shape}"
            )
        flat = arr.reshape(-1, len(self))
        problems = []
        for j, r in enumerate(self.rows):
            col = flat[:, j]
            bad = ~np.isfinite(col) | (col < r.lower) | (col > r.upper)
            if bad.any():
                problems.append(
                    f"{r.name}: expected [{r.lower:g}, {r.upper:g}] {r.units}, "
                    f"found {col[bad][:3].tolist()}"
                )
        if problems:
            raise ValueError(f"{what} outside their bounds:\n  " + "\n  ".join(problems))

    # -- named structures -------------------------------------------------------------
    def unflatten(self, vec: ArrayLike, cls: type[NamedTuple]) -> Any:
        """Split the last axis of ``vec`` into the fields of NamedTuple ``cls``.

        ``cls`` must have exactly the table's names as fields, in table order.
        """
        self._check_fields(cls)
        vec = jnp.asarray(vec)
        if vec.shape[-1:] != (len(self),):
            raise ValueError(
                f"expected a last axis of length {len(self)} for {cls.__name__}, "
                f"found shape {tuple(vec.shape)}"
            )
        return cls(*(vec[..., i] for i in range(len(self))))

    def flatten(self, values: Any) -> jnp.ndarray:
        """Stack a NamedTuple whose fields are this table's names into a vector (last axis)."""
        self._check_fields(type(values))
        return jnp.stack([jnp.asarray(v) for v in values], axis=-1)

    def _check_fields(self, cls: type) -> None:
        fields: Sequence[str] = getattr(cls, "_fields", ())
        if tuple(fields) != self.names:
            raise TypeError(
                f"{cls.__name__} fields {tuple(fields)} do not match the table order {self.names}"
            )

    # -- presentation -----------------------------------------------------------------
    def to_dataframe(self):
        """Return the table as a :class:`pandas.DataFrame` (one row per parameter)."""
        import pandas as pd

        return pd.DataFrame(
            {
                "name": self.names,
                "group": [r.group for r in self.rows],
                "lower": self.lower,
                "upper": self.upper,
                "default (z=0)": self.default,
                "units": self.units,
                "description": [r.description for r in self.rows],
            }
        )

    def to_markdown(self) -> str:
        """Render the table as GitHub-flavoured Markdown (used to generate the docs)."""
        lines = [
            "| # | name | group | lower | upper | z=0 value | units | meaning |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for i, r in enumerate(self.rows):
            lines.append(
                f"| {i} | `{r.name}` | {r.group} | {r.lower:.6g} | {r.upper:.6g} | "
                f"{r.default:.4g} | {r.units} | {r.description} |"
            )
        return "\n".join(lines)
