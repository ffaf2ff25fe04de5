"""A known, nonlinear map from a site's environment to unconstrained parameters.

For every parameter ``k`` of the relationship, in the unconstrained space ``z`` of the
parameter table (``theta = table.to_physical(z)``)::

    z_k = intercept_k
          + sum_j tanh_kj * tanh(x_j)            saturating responses
          + sum_j quadratic_kj * x_j ** 2        optima and curvature
          + interaction_k * x_a * x_b            one interaction (default: mat x map)
          + offset_k[vegetation_class]           categorical shift (0 for unlisted classes)
          + residual_sd_k * eps,  eps ~ N(0, 1)  per-site residual

with standardised predictors ``x_j = (v_j - center_j) / scale_j`` (``"linear"``) or
``x_j = ln(v_j / center_j) / scale_j`` (``"log"``). :func:`default_relationship` gives
the relationship of the synthetic worlds; :class:`Relationship` also builds others
(:meth:`Relationship.from_terms`) and round-trips through dataset variables
(:meth:`Relationship.to_dataset`, :meth:`Relationship.from_dataset`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from .climate import FEATURES, VEGETATION_CLASSES

__all__ = [
    "DEFAULT_FEATURES",
    "DEFAULT_TERMS",
    "TRANSFORMS",
    "Relationship",
    "default_relationship",
]

TRANSFORMS = ("linear", "log")

PARAMETER_DIM = "varying_parameter"
FEATURE_DIM = "relationship_feature"
CLASS_DIM = "veg_class"


_TRANSFORM_HELP = "linear: x = (v - center) / scale; log: x = ln(v / center) / scale"


def _fmt(x: float) -> str:
    return f"{x:.4g}"


@dataclass(frozen=True, eq=False)
class Relationship:
    """Environment -> unconstrained parameter relationship (see the module docstring).

    Parameters
    ----------
    parameters : tuple of str
        Parameters (table names) that follow the relationship, ``P`` of them.
    features : tuple of str
        Environment predictors used (names of the ``feature`` coordinate), ``F``.
    transforms : tuple of str
        ``"linear"`` or ``"log"`` per feature.
    centers, scales : numpy.ndarray
        ``(F,)``; centre in the feature's units, scale in the feature's units
        (``"linear"``) or in natural-log units (``"log"``).
    intercept : numpy.ndarray
        ``(P,)``, unconstrained units (1).
    tanh, quadratic : numpy.ndarray
        ``(P, F)`` coefficients of ``tanh(x_j)`` and ``x_j ** 2``.
    interaction_features : tuple of str
        The two features ``(a, b)`` whose product ``x_a * x_b`` enters.
    interaction : numpy.ndarray
        ``(P,)`` coefficients of ``x_a * x_b``.
    classes : tuple of str
        Vegetation classes with an offset; other classes have offset 0.
    class_offset : numpy.ndarray
        ``(P, C)`` offsets per class.
    residual_sd : numpy.ndarray
        ``(P,)`` standard deviation of the per-site residual, unconstrained units.
    """

    parameters: tuple[str, ...]
    features: tuple[str, ...]
    transforms: tuple[str, ...]
    centers: np.ndarray
    scales: np.ndarray
    intercept: np.ndarray
    tanh: np.ndarray
    quadratic: np.ndarray
    interaction_features: tuple[str, str]
    interaction: np.ndarray
    classes: tuple[str, ...]
    class_offset: np.ndarray
    residual_sd: np.ndarray
    feature_units: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        for name in ("parameters", "features", "transforms", "classes", "interaction_features"):
            set_(name, tuple(str(v) for v in getattr(self, name)))
        n_p, n_f, n_c = len(self.parameters), len(self.features), len(self.classes)
        shapes = {
            "centers": (n_f,),
            "scales": (n_f,),
            "intercept": (n_p,),
            "tanh": (n_p, n_f),
            "quadratic": (n_p, n_f),
            "interaction": (n_p,),
            "class_offset": (n_p, n_c),
            "residual_sd": (n_p,),
        }
        for name, shape in shapes.items():
            arr = np.array(getattr(self, name), dtype=np.float64).reshape(shape)
            arr.flags.writeable = False
            set_(name, arr)
        problems = []
        for what, names in (("parameters", self.parameters), ("features", self.features)):
            if len(set(names)) != len(names):
                problems.append(f"{what} must be unique, found {list(names)}")
        if len(self.transforms) != n_f or set(self.transforms) - set(TRANSFORMS):
            problems.append(f"transforms must be one of {TRANSFORMS} per feature")
        if np.any(self.scales <= 0) or not np.all(np.isfinite(self.scales)):
            problems.append(f"scales must be positive, found {self.scales.tolist()}")
        logs = np.array([t == "log" for t in self.transforms], bool)
        if np.any(self.centers[logs] <= 0):
            problems.append("centers of log-transformed features must be positive")
        if np.any(self.residual_sd < 0):
            problems.append(f"residual_sd must be >= 0, found {self.residual_sd.tolist()}")
        if len(self.interaction_features) != 2 or not set(self.interaction_features) <= set(
            self.features
        ):
            problems.append(
                f"interaction_features must be two of {list(self.features)}, found "
                f"{list(self.interaction_features)}"
            )
        if not self.feature_units:
            set_("feature_units", tuple(FEATURES.get(f, ("1", ""))[0] for f in self.features))
        if problems:
            raise ValueError("invalid relationship: " + "; ".join(problems))

    # -- construction ---------------------------------------------------------------
    @classmethod
    def from_terms(
        cls,
        features: Mapping[str, tuple[str, float, float]],
        parameters: Mapping[str, Mapping[str, object]],
        *,
        interaction_features: tuple[str, str] = ("mat", "map"),
    ) -> Relationship:
        """Build a relationship from readable per-parameter terms.

        Parameters
        ----------
        features : mapping
            ``{feature: (transform, center, scale)}``.
        parameters : mapping
            ``{parameter: terms}`` with optional keys ``intercept`` (float), ``tanh`` and
            ``quadratic`` (``{feature: coefficient}``), ``interaction`` (float),
            ``vegetation`` (``{class: offset}``) and ``residual_sd`` (float).
        interaction_features : tuple of str
            The two features of the interaction term.
        """
        feats = list(features)
        known = {"intercept", "tanh", "quadratic", "interaction", "vegetation", "residual_sd"}
        classes: list[str] = []
        for name, terms in parameters.items():
            unknown = set(terms) - known
            if unknown:
                raise ValueError(f"{name}: unknown terms {sorted(unknown)}; known: {sorted(known)}")
            for c in dict(terms.get("vegetation", {})):  # type: ignore[call-overload]
                if c not in classes:
                    classes.append(str(c))
        order = {c: i for i, c in enumerate(VEGETATION_CLASSES)}
        classes.sort(key=lambda c: (order.get(c, len(order)), c))
        n_p, n_f = len(parameters), len(feats)
        tanh, quad = np.zeros((n_p, n_f)), np.zeros((n_p, n_f))
        offset = np.zeros((n_p, len(classes)))
        for i, terms in enumerate(parameters.values()):
            for arr, key in ((tanh, "tanh"), (quad, "quadratic")):
                for f, v in dict(terms.get(key, {})).items():  # type: ignore[call-overload]
                    if f not in feats:
                        raise ValueError(f"{key} term on unknown feature {f!r}; known: {feats}")
                    arr[i, feats.index(f)] = float(v)
            for c, v in dict(terms.get("vegetation", {})).items():  # type: ignore[call-overload]
                offset[i, classes.index(str(c))] = float(v)
        get = lambda key: [float(t.get(key, 0.0)) for t in parameters.values()]  # noqa: E731
        return cls(
            parameters=tuple(parameters),
            features=tuple(feats),
            transforms=tuple(features[f][0] for f in feats),
            centers=np.array([features[f][1] for f in feats], float),
            scales=np.array([features[f][2] for f in feats], float),
            intercept=np.array(get("intercept")),
            tanh=tanh,
            quadratic=quad,
            interaction_features=interaction_features,
            interaction=np.array(get("interaction")),
            classes=tuple(classes),
            class_offset=offset,
            residual_sd=np.array(get("residual_sd")),
        )

    def subset(self, parameters: Sequence[str]) -> Relationship:
        """Restrict the relationship to ``parameters`` (in that order)."""
        missing = [p for p in parameters if p not in self.parameters]
        if missing:
            raise ValueError(
                f"parameters {missing} have no relationship; available: {list(self.parameters)}"
            )
        idx = [self.parameters.index(p) for p in parameters]
        return Relationship(
            parameters=tuple(parameters),
            features=self.features,
            transforms=self.transforms,
            centers=self.centers,
            scales=self.scales,
            intercept=self.intercept[idx],
            tanh=self.tanh[idx],
            quadratic=self.quadratic[idx],
            interaction_features=self.interaction_features,
            interaction=self.interaction[idx],
            classes=self.classes,
            class_offset=self.class_offset[idx],
            residual_sd=self.residual_sd[idx],
            feature_units=self.feature_units,
        )

    # -- evaluation -----------------------------------------------------------------
    def standardize(self, env: np.ndarray, feature_names: Sequence[str]) -> np.ndarray:
        """Standardised predictors ``x`` of shape ``(site, F)`` from ``env (site, feature)``."""
        names = [str(f) for f in feature_names]
        missing = [f for f in self.features if f not in names]
        if missing:
            raise ValueError(f"relationship needs env features {missing}; found {names}")
        env = np.asarray(env, np.float64)
        v = env[:, [names.index(f) for f in self.features]]
        x = np.empty_like(v)
        for j, t in enumerate(self.transforms):
            if t == "log":
                x[:, j] = np.log(v[:, j] / self.centers[j]) / self.scales[j]
            else:
                x[:, j] = (v[:, j] - self.centers[j]) / self.scales[j]
        return x

    def mean_z(
        self, env: np.ndarray, feature_names: Sequence[str], vegetation_class: Sequence[str]
    ) -> np.ndarray:
        """Evaluate the relationship without its residual: ``(site, P)``, unconstrained."""
        x = self.standardize(env, feature_names)
        a, b = (self.features.index(f) for f in self.interaction_features)
        z = self.intercept + np.tanh(x) @ self.tanh.T + (x**2) @ self.quadratic.T
        z = z + np.outer(x[:, a] * x[:, b], self.interaction)
        veg = np.asarray(vegetation_class).astype(str)
        for c, name in enumerate(self.classes):
            z = z + np.outer(veg == name, self.class_offset[:, c])
        return z

    # -- presentation and storage ---------------------------------------------------
    def describe(self) -> str:
        """Human-readable definition, one line per predictor and per parameter."""
        lines = []
        for f, t, c, s, u in zip(
            self.features,
            self.transforms,
            self.centers,
            self.scales,
            self.feature_units,
            strict=True,
        ):
            if t == "log":
                lines.append(f"x_{f} = ln({f} / {_fmt(c)} {u}) / {_fmt(s)}")
            else:
                lines.append(f"x_{f} = ({f} - {_fmt(c)} {u}) / {_fmt(s)} {u}")
        a, b = self.interaction_features
        for i, p in enumerate(self.parameters):
            terms = [_fmt(self.intercept[i])]
            for j, f in enumerate(self.features):
                if self.tanh[i, j]:
                    terms.append(f"{_fmt(self.tanh[i, j])} tanh(x_{f})")
                if self.quadratic[i, j]:
                    terms.append(f"{_fmt(self.quadratic[i, j])} x_{f}^2")
            if self.interaction[i]:
                terms.append(f"{_fmt(self.interaction[i])} x_{a} x_{b}")
            offsets = {c: o for c, o in zip(self.classes, self.class_offset[i], strict=True) if o}
            if offsets:
                terms.append("b[vegetation_class]")
            text = f"z[{p}] = " + " + ".join(terms).replace("+ -", "- ")
            text += f" + e, e ~ N(0, {_fmt(self.residual_sd[i])}^2)"
            if offsets:
                text += "; b = {" + ", ".join(f"{c}: {_fmt(o)}" for c, o in offsets.items())
                text += "}, 0 for other classes"
            lines.append(text)
        return "\n".join(lines)

    def to_dataset(self) -> xr.Dataset:
        """Return the coefficients as ``relationship_*`` variables (units, long names)."""
        pf, fd = (PARAMETER_DIM, FEATURE_DIM), (FEATURE_DIM,)
        one = "1"

        def var(dims, values, long_name, units=one):
            return (dims, np.asarray(values), {"units": units, "long_name": long_name})

        ds = xr.Dataset(
            {
                "relationship_intercept": var((PARAMETER_DIM,), self.intercept, "intercept"),
                "relationship_tanh": var(pf, self.tanh, "coefficient of tanh(x_j)"),
                "relationship_quadratic": var(pf, self.quadratic, "coefficient of x_j^2"),
                "relationship_interaction": var(
                    (PARAMETER_DIM,),
                    self.interaction,
                    f"coefficient of x_{self.interaction_features[0]} "
                    f"x_{self.interaction_features[1]}",
                ),
                "relationship_vegetation_offset": var(
                    (PARAMETER_DIM, CLASS_DIM),
                    self.class_offset,
                    "offset per vegetation class (0 for classes not listed)",
                ),
                "relationship_residual_sd": var(
                    (PARAMETER_DIM,), self.residual_sd, "standard deviation of the site residual"
                ),
                "relationship_center": var(
                    fd,
                    self.centers,
                    "centre of the standardisation, in the feature's units",
                    "see relationship_feature_units",
                ),
                "relationship_scale": var(
                    fd,
                    self.scales,
                    "scale of the standardisation (natural-log units for log transforms)",
                    "see relationship_feature_units",
                ),
            },
            coords={
                PARAMETER_DIM: (PARAMETER_DIM, np.array(self.parameters, dtype=str)),
                FEATURE_DIM: (FEATURE_DIM, np.array(self.features, dtype=str)),
                CLASS_DIM: (CLASS_DIM, np.array(self.classes, dtype=str)),
                "relationship_transform": (
                    FEATURE_DIM,
                    np.array(self.transforms, dtype=str),
                    {"long_name": _TRANSFORM_HELP},
                ),
                "relationship_feature_units": (
                    FEATURE_DIM,
                    np.array(self.feature_units, dtype=str),
                    {"long_name": "units of each predictor"},
                ),
            },
        )
        ds[PARAMETER_DIM].attrs["long_name"] = "parameters that follow the relationship"
        ds[FEATURE_DIM].attrs["long_name"] = "predictors of the relationship"
        ds[CLASS_DIM].attrs["long_name"] = "vegetation classes with an offset"
        ds["relationship_interaction"].attrs["features"] = " ".join(self.interaction_features)
        return ds

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> Relationship:
        """Rebuild the relationship stored by :meth:`to_dataset` (e.g. in a world)."""
        return cls(
            parameters=tuple(ds[PARAMETER_DIM].values.astype(str)),
            features=tuple(ds[FEATURE_DIM].values.astype(str)),
            transforms=tuple(ds["relationship_transform"].values.astype(str)),
            centers=ds["relationship_center"].values,
            scales=ds["relationship_scale"].values,
            intercept=ds["relationship_intercept"].values,
            tanh=ds["relationship_tanh"].transpose(PARAMETER_DIM, FEATURE_DIM).values,
            quadratic=ds["relationship_quadratic"].transpose(PARAMETER_DIM, FEATURE_DIM).values,
            interaction_features=tuple(ds["relationship_interaction"].attrs["features"].split()),
            interaction=ds["relationship_interaction"].values,
            classes=tuple(ds[CLASS_DIM].values.astype(str)),
            class_offset=ds["relationship_vegetation_offset"]
            .transpose(PARAMETER_DIM, CLASS_DIM)
            .values,
            residual_sd=ds["relationship_residual_sd"].values,
            feature_units=tuple(ds["relationship_feature_units"].values.astype(str)),
        )


#: predictors of the default relationship: name -> (transform, center, scale)
DEFAULT_FEATURES: dict[str, tuple[str, float, float]] = {
    "mat": ("linear", 12.0, 9.0),
    "map": ("log", 900.0, 0.7),
    "elevation": ("linear", 600.0, 700.0),
    "forest_age": ("log", 60.0, 0.8),
    "lat": ("linear", 0.0, 5.0),
}

#: terms of the default relationship (see :meth:`Relationship.from_terms`)
DEFAULT_TERMS: dict[str, dict[str, object]] = {
    "canopy_efficiency": {
        "intercept": 0.3,
        "tanh": {"mat": 0.5, "map": 0.4},
        "quadratic": {"mat": -0.15},
        "interaction": 0.2,
        "vegetation": {
            "ENF": -0.2,
            "EBF": 0.1,
            "DBF": 0.2,
            "OSH": -0.3,
            "SAV": -0.1,
            "CRO": 0.4,
        },
        "residual_sd": 0.15,
    },
    "LCMA": {
        "intercept": 0.8,
        "tanh": {"map": -0.2, "elevation": 0.2},
        "vegetation": {
            "ENF": 0.5,
            "EBF": 0.3,
            "DBF": -0.3,
            "MF": 0.1,
            "SAV": -0.2,
            "GRA": -0.2,
            "CRO": -0.2,
        },
        "residual_sd": 0.12,
    },
    "leaf_lifespan": {
        "intercept": -1.5,
        "tanh": {"mat": -0.3},
        "vegetation": {
            "ENF": 1.2,
            "EBF": 0.9,
            "DBF": -0.8,
            "MF": 0.3,
            "OSH": 0.4,
            "SAV": -0.3,
            "GRA": -0.8,
            "CRO": -1.0,
        },
        "residual_sd": 0.15,
    },
    "f_fol": {
        "intercept": 0.4,
        "tanh": {"map": -0.35},
        "quadratic": {"mat": -0.1},
        "vegetation": {
            "ENF": -0.2,
            "EBF": -0.1,
            "DBF": 0.2,
            "OSH": 0.5,
            "SAV": 0.5,
            "GRA": 0.8,
            "CRO": 0.8,
        },
        "residual_sd": 0.1,
    },
    "tor_wood": {
        "intercept": -1.2,
        "tanh": {"forest_age": -0.35, "mat": 0.25},
        "vegetation": {"EBF": -0.1, "OSH": 0.1, "SAV": 0.2, "GRA": 0.3, "CRO": 0.4},
        "residual_sd": 0.15,
    },
    "Q10": {
        "intercept": 1.0,
        "tanh": {"mat": -0.4},
        "quadratic": {"mat": 0.15},
        "interaction": -0.15,
        "residual_sd": 0.1,
    },
    "boese_r": {"intercept": -0.2, "tanh": {"map": 1.2}, "residual_sd": 0.1},
    "Bday": {"intercept": -0.7311, "tanh": {"lat": -0.5419}, "residual_sd": 0.05},
    "Fday": {"intercept": -0.0166, "tanh": {"lat": -0.2924}, "residual_sd": 0.05},
}


def default_relationship() -> Relationship:
    """Return the relationship of the synthetic worlds (valid for DALEC993 and DALEC990).

    Nine parameters vary: canopy efficiency (warm, wet, with a temperature optimum and a
    temperature x precipitation interaction), leaf carbon mass per area (evergreen and
    high sites thicker, wet sites thinner), leaf lifespan (evergreen and cold sites
    longer), foliage allocation (herbaceous and dry sites more), wood turnover (faster at
    young stands and in warm climates), the temperature sensitivity of decomposition
    (lower in warm climates, curved, with an interaction), the radiation term of
    evapotranspiration ``boese_r`` (small in dry climates, where evaporation is water
    limited), and the phenology phases ``Bday`` / ``Fday``, which move by half a year
    between the hemispheres (``tanh(lat / 5 degrees)``; the northern values are the
    default site's, 490 and 640 d).
    """
    return Relationship.from_terms(
        DEFAULT_FEATURES, copy.deepcopy(DEFAULT_TERMS), interaction_features=("mat", "map")
    )
