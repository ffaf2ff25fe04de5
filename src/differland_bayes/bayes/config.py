"""Configuration of the hybrid Bayesian model (frozen, validated dataclasses).

Three levels: :class:`NetworkConfig` (the environment -> parameter prior network),
:class:`LikelihoodConfig` (observation model of every stream) and :class:`ModelConfig`
(the hierarchy, the optional EDC potential and fixed parameters). Every value is
checked in ``__post_init__``; errors name the field, the expected values and what was
found. The classes are hashable (mappings are stored as :class:`FrozenMap`), so a
configuration may be a static argument of ``jax.jit``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ACTIVATIONS",
    "DEFAULT_NOISE_PRIOR_SCALE",
    "FAMILIES",
    "FrozenMap",
    "LikelihoodConfig",
    "ModelConfig",
    "NetworkConfig",
]

#: activations the prior network knows (``leaky_relu`` with slope 0.01 as published)
ACTIVATIONS: tuple[str, ...] = ("leaky_relu", "relu", "tanh", "softplus")

#: likelihood families
FAMILIES: tuple[str, ...] = ("normal", "student_t")
#: Prior means of the seasonal discrepancy (:mod:`~.discrepancy`)
DISCREPANCY_MEANS: tuple[str, ...] = ("zero", "environment")
#: Largest number of annual harmonics of an environment-predicted discrepancy mean
#: (``1 + 2 * 5 = 11`` basis functions on the 12 calendar months)
MAX_DISCREPANCY_HARMONICS = 5

#: Default scale of the HalfNormal prior on a learned per-stream noise sd, in the
#: stream's units (weakly informative: about the size of typical values of the stream).
DEFAULT_NOISE_PRIOR_SCALE: dict[str, float] = {
    "gpp": 2.0,  # gC m-2 d-1
    "nee": 1.0,  # gC m-2 d-1
    "reco": 2.0,  # gC m-2 d-1
    "nbe": 1.0,  # gC m-2 d-1
    "et": 1.0,  # mm d-1
    "lai": 1.0,  # m2 m-2
    "biomass": 2000.0,  # gC m-2
    "sif": 0.3,  # mW m-2 nm-1 sr-1
    "vod": 0.2,  # 1
    "fire": 0.2,  # gC m-2 d-1
    "ewt": 50.0,  # mm
}


class FrozenMap(Mapping[str, float]):
    """An immutable, hashable ``str -> float`` mapping (keys kept sorted).

    Parameters
    ----------
    items : mapping or iterable of pairs, optional
        The entries; values are converted to ``float``.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, Any] | Any = ()) -> None:
        pairs = dict(items)
        self._items: tuple[tuple[str, float], ...] = tuple(
            sorted((str(k), float(v)) for k, v in pairs.items())
        )

    def __getitem__(self, key: str) -> float:
        for k, v in self._items:
            if k == key:
                return v
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self._items) == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenMap({dict(self._items)!r})"


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _positive(owner: str, name: str, value: Any, *, allow_zero: bool = False) -> None:
    ok = _is_number(value)
    ok = ok and (value >= 0 if allow_zero else value > 0)
    if not ok:
        what = "a finite number >= 0" if allow_zero else "a finite number > 0"
        raise ValueError(f"{owner}.{name}: expected {what}, found {value!r}")


def _flag(owner: str, name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{owner}.{name}: expected True or False, found {value!r}")


@dataclass(frozen=True)
class NetworkConfig:
    """The prior network ``f_phi``: environment -> location (and scale) of ``z``.

    Parameters
    ----------
    hidden : tuple of int
        Widths of the hidden (trunk) layers; ``()`` makes every head linear in the
        environment. Default ``(32, 32, 32)`` as published (spec §3.2).
    activation : str
        One of :data:`ACTIVATIONS`, applied after every trunk layer (the published
        network also activates its last trunk layer).
    negative_slope : float
        Slope of ``leaky_relu`` for negative inputs (0.01, the JAX default).
    bayesian_weights : bool
        False: weights are point estimates (a NumPyro ``param``) regularised by the
        weight prior as a ``numpyro.factor``; True: weights are latent variables with
        that prior (``random_eqx_module``).
    weight_prior_scale : float
        The weight prior is ``Normal(0, weight_prior_scale / sqrt(fan_in))`` for every
        weight matrix (so the prior on a head's output does not grow with the width).
    bias_prior_scale : float
        The prior of every bias vector is ``Normal(0, bias_prior_scale)``.
    scale_floor : float
        Lower bound of the multiplier predicted by the optional scale head, in ``(0, 1)``.
    """

    hidden: tuple[int, ...] = (32, 32, 32)
    activation: str = "leaky_relu"
    negative_slope: float = 0.01
    bayesian_weights: bool = False
    weight_prior_scale: float = 1.0
    bias_prior_scale: float = 1.0
    scale_floor: float = 0.1

    def __post_init__(self) -> None:
        hidden = self.hidden
        if isinstance(hidden, int) or not all(
            isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in hidden
        ):
            raise ValueError(
                f"NetworkConfig.hidden: expected a tuple of positive integers, found {hidden!r}"
            )
        object.__setattr__(self, "hidden", tuple(hidden))
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"NetworkConfig.activation: expected one of {ACTIVATIONS}, "
                f"found {self.activation!r}"
            )
        _positive("NetworkConfig", "negative_slope", self.negative_slope, allow_zero=True)
        _flag("NetworkConfig", "bayesian_weights", self.bayesian_weights)
        _positive("NetworkConfig", "weight_prior_scale", self.weight_prior_scale)
        _positive("NetworkConfig", "bias_prior_scale", self.bias_prior_scale)
        _positive("NetworkConfig", "scale_floor", self.scale_floor)
        if not self.scale_floor < 1.0:
            raise ValueError(
                "NetworkConfig.scale_floor: expected a number in (0, 1), "
                f"found {self.scale_floor!r}"
            )


@dataclass(frozen=True)
class LikelihoodConfig:
    """Observation model of every stream.

    Parameters
    ----------
    family : {"normal", "student_t"}
        Distribution of an observation around the model's prediction.
    df : float
        Degrees of freedom of the Student-t family (ignored for ``"normal"``).
    use_data_uncertainty : bool
        Use the 1-sd uncertainty that comes with a stream (``<stream>_unc``) as the
        noise scale. Streams without one (and all streams when False) get a learned
        per-stream noise scale ``noise_<stream>``.
    add_learned_noise : bool
        With data uncertainty, also learn a per-stream noise sd and use the combined
        scale ``sqrt(unc**2 + noise_<stream>**2)`` (structural / representativeness
        error on top of the measurement error).
    noise_prior_scale : mapping of str to float
        Per-stream scale of the ``HalfNormal`` prior of ``noise_<stream>``, in the
        stream's units; merged over :data:`DEFAULT_NOISE_PRIOR_SCALE`.
    default_noise_prior_scale : float
        Scale for a stream listed in neither mapping.
    discrepancy : tuple of str
        Streams with a seasonal model discrepancy (:mod:`~.discrepancy`): a per-site,
        per-calendar-month correction ``delta`` of the prediction and a learned share
        ``rho`` of the model's interannual anomaly. Empty (default): none.
    discrepancy_prior_scale : mapping of str to float
        Per-stream scale of the ``HalfNormal`` prior of the discrepancy sd
        ``discrepancy_sd``, in the stream's units; default the stream's noise prior scale
        (:meth:`noise_scale_for`).
    discrepancy_mean : {"zero", "environment"}
        Prior mean of each site's discrepancy: ``"zero"`` (a site the fit has not seen
        gets none on average), or ``"environment"``: a linear function of the site's
        standardised environment, per stream, on a basis of ``discrepancy_harmonics``
        annual harmonics (global coefficients ``discrepancy_coef``), so that the model's
        systematic seasonal error is learned as a function of the environment and
        carried to new sites.
    discrepancy_harmonics : int
        Annual harmonics of the environment-predicted mean (0: a constant offset per
        site; at most :data:`MAX_DISCREPANCY_HARMONICS`).
    relative_noise : tuple of str
        Streams whose observation noise grows with the flux: a learned fraction
        ``relnoise_<stream>`` of the flux's magnitude is added in quadrature,
        ``sd = sqrt(base**2 + (relnoise * |flux|)**2)`` with ``base`` the constant scale
        above (the random error of eddy-covariance fluxes grows with their magnitude;
        Richardson et al. 2006). ``flux`` is the observation where the model is
        conditioned on one, the prediction where new observations are drawn. Empty
        (default): constant noise.
    relative_noise_prior_scale : float
        Scale of the ``HalfNormal`` prior of every ``relnoise_<stream>`` (a fraction,
        dimensionless).
    """

    family: str = "normal"
    df: float = 4.0
    use_data_uncertainty: bool = True
    add_learned_noise: bool = False
    noise_prior_scale: Mapping[str, float] = field(default_factory=FrozenMap)
    default_noise_prior_scale: float = 1.0
    discrepancy: tuple[str, ...] = ()
    discrepancy_prior_scale: Mapping[str, float] = field(default_factory=FrozenMap)
    discrepancy_mean: str = "zero"
    discrepancy_harmonics: int = 2
    relative_noise: tuple[str, ...] = ()
    relative_noise_prior_scale: float = 0.5

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(
                f"LikelihoodConfig.family: expected one of {FAMILIES}, found {self.family!r}"
            )
        _positive("LikelihoodConfig", "df", self.df)
        _flag("LikelihoodConfig", "use_data_uncertainty", self.use_data_uncertainty)
        _flag("LikelihoodConfig", "add_learned_noise", self.add_learned_noise)
        self._freeze_scales("noise_prior_scale")
        _positive("LikelihoodConfig", "default_noise_prior_scale", self.default_noise_prior_scale)
        object.__setattr__(self, "discrepancy", self._stream_tuple("discrepancy"))
        self._freeze_scales("discrepancy_prior_scale")
        object.__setattr__(self, "relative_noise", self._stream_tuple("relative_noise"))
        _positive("LikelihoodConfig", "relative_noise_prior_scale", self.relative_noise_prior_scale)
        if self.discrepancy_mean not in DISCREPANCY_MEANS:
            raise ValueError(
                f"LikelihoodConfig.discrepancy_mean: expected one of {DISCREPANCY_MEANS}, "
                f"found {self.discrepancy_mean!r}"
            )
        h = self.discrepancy_harmonics
        if not (isinstance(h, int) and not isinstance(h, bool)) or not (
            0 <= h <= MAX_DISCREPANCY_HARMONICS
        ):
            raise ValueError(
                "LikelihoodConfig.discrepancy_harmonics: expected an integer in "
                f"[0, {MAX_DISCREPANCY_HARMONICS}], found {h!r}"
            )

    @property
    def discrepancy_has_mean(self) -> bool:
        """Whether the discrepancy has an environment-predicted prior mean."""
        return bool(self.discrepancy) and self.discrepancy_mean == "environment"

    def _stream_tuple(self, name: str) -> tuple[str, ...]:
        """Check a field holding distinct stream names; return it as a tuple."""
        streams = getattr(self, name)
        if isinstance(streams, str) or not all(isinstance(k, str) and k for k in streams):
            raise ValueError(
                f"LikelihoodConfig.{name}: expected a tuple of stream names, found {streams!r}"
            )
        if len(set(streams)) != len(tuple(streams)):
            raise ValueError(
                f"LikelihoodConfig.{name}: expected distinct streams, found {streams!r}"
            )
        return tuple(streams)

    def _freeze_scales(self, name: str) -> None:
        """Check a ``stream -> positive scale`` mapping field and store it frozen."""
        value = getattr(self, name)
        if not isinstance(value, Mapping):
            raise ValueError(
                f"LikelihoodConfig.{name}: expected a mapping stream -> scale, found {value!r}"
            )
        for k, v in value.items():
            _positive("LikelihoodConfig", f"{name}[{k!r}]", v)
        object.__setattr__(self, name, FrozenMap(value))

    def noise_scale_for(self, stream: str) -> float:
        """Scale of the HalfNormal prior of ``noise_<stream>`` (stream units)."""
        if stream in self.noise_prior_scale:
            return self.noise_prior_scale[stream]
        return DEFAULT_NOISE_PRIOR_SCALE.get(stream, self.default_noise_prior_scale)

    def discrepancy_scale_for(self, stream: str) -> float:
        """Scale of the HalfNormal prior of a stream's ``discrepancy_sd`` (stream units)."""
        if stream in self.discrepancy_prior_scale:
            return self.discrepancy_prior_scale[stream]
        return self.noise_scale_for(stream)

    def discrepancy_scales(self) -> tuple[float, ...]:
        """Prior scales of ``discrepancy_sd``, in the order of :attr:`discrepancy`."""
        return tuple(self.discrepancy_scale_for(s) for s in self.discrepancy)


@dataclass(frozen=True)
class ModelConfig:
    """The hybrid hierarchical model.

    Parameters
    ----------
    network : NetworkConfig
        Prior network.
    likelihood : LikelihoodConfig
        Observation model.
    sigma_prior_scale : float
        Median of the ``LogNormal`` prior of the per-parameter residual sd ``sigma``,
        in unconstrained (``z``) units. ``z`` of the bounded transform spans its whole
        range within about ``[-3, 3]``, so 0.3 allows site-to-site spread beyond the
        environment's of a tenth of the range.
    sigma_prior_log_sd : float
        Log-scale sd of that prior (1.0: 90 % of its mass within ``[0.19, 5.2] *``
        the median). A LogNormal has zero density at 0, which keeps ``sigma`` away
        from collapse (also for MAP / ``AutoDelta``).
    sigma_floor : float
        Constant added to ``sigma`` (``z`` units) for the residual sd actually used;
        0 switches the floor off.
    edc_scale : float or None
        None (default): no EDC. Otherwise the steady-state EDC of spec §4.4 enters as
        the potential ``-edc_scale * EDC_s`` per site (``EDC_s`` is a sum of squared
        log2 ratios), i.e. a Gaussian on each log2 ratio with sd
        ``(2 * edc_scale) ** -0.5``; the published weight is 10 (sd 0.224).
    fixed_parameters : mapping of str to float
        Parameters (table names) held at the given physical value at every site; they
        are not sampled and the network does not predict them (e.g. the SIF, VOD or
        fire parameters when those streams are absent).
    predict_scale : bool
        Also predict a per-site multiplier of ``sigma`` from the environment (the
        network's scale head), for heteroscedastic residuals.
    circular_phases : bool
        Put the parameters the process model uses only modulo a period (the phenology
        phases ``Bday`` / ``Fday``) on the periodic transform
        (:meth:`~differland_bayes.params.ParamTable.with_periodic_transform`): ``z`` is
        then the phase angle (rad), the hierarchy a wrapped normal on the circle, and the
        network's predictions for new sites interpolate phases around the year instead
        of between windings a year apart. False keeps the published bounded transform.
    """

    network: NetworkConfig = field(default_factory=NetworkConfig)
    likelihood: LikelihoodConfig = field(default_factory=LikelihoodConfig)
    sigma_prior_scale: float = 0.3
    sigma_prior_log_sd: float = 1.0
    sigma_floor: float = 0.0
    edc_scale: float | None = None
    fixed_parameters: Mapping[str, float] = field(default_factory=FrozenMap)
    predict_scale: bool = False
    circular_phases: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.network, NetworkConfig):
            raise ValueError(
                "ModelConfig.network: expected a NetworkConfig, "
                f"found {type(self.network).__name__}"
            )
        if not isinstance(self.likelihood, LikelihoodConfig):
            raise ValueError(
                "ModelConfig.likelihood: expected a LikelihoodConfig, found "
                f"{type(self.likelihood).__name__}"
            )
        _positive("ModelConfig", "sigma_prior_scale", self.sigma_prior_scale)
        _positive("ModelConfig", "sigma_prior_log_sd", self.sigma_prior_log_sd)
        _positive("ModelConfig", "sigma_floor", self.sigma_floor, allow_zero=True)
        if self.edc_scale is not None:
            _positive("ModelConfig", "edc_scale", self.edc_scale)
        if not isinstance(self.fixed_parameters, Mapping):
            raise ValueError(
                "ModelConfig.fixed_parameters: expected a mapping name -> physical value, "
                f"found {self.fixed_parameters!r}"
            )
        for k, v in self.fixed_parameters.items():
            if not _is_number(v):
                raise ValueError(
                    f"ModelConfig.fixed_parameters[{k!r}]: expected a finite number, found {v!r}"
                )
        object.__setattr__(self, "fixed_parameters", FrozenMap(self.fixed_parameters))
        _flag("ModelConfig", "predict_scale", self.predict_scale)
        _flag("ModelConfig", "circular_phases", self.circular_phases)
