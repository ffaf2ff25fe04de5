"""The schema of ``differland fit`` configurations: one frozen dataclass per TOML section.

Each field carries its default, its documentation and an optional value check
(``metadata["doc"]``, ``metadata["check"]``); :mod:`.fitconfig` validates, loads and
writes configurations against it (the schema is documented there).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..dataset import STREAMS
from ..io.predictors import DERIVED_PREDICTORS
from ..process.base import MODES
from ..process.registry import MODELS
from .config import (
    ACTIVATIONS,
    DISCREPANCY_MEANS,
    FAMILIES,
    MAX_DISCREPANCY_HARMONICS,
    FrozenMap,
    LikelihoodConfig,
    ModelConfig,
    NetworkConfig,
)
from .guides import GUIDE_KINDS
from .optim import SCHEDULES
from .svi import LOSS_KINDS

__all__ = [
    "DATASET_SUFFIXES",
    "DATA_SOURCES",
    "FIXED_AT",
    "SITE_SPLITS",
    "DataConfig",
    "EarlyStoppingConfig",
    "FitConfig",
    "LikelihoodSection",
    "ModelSection",
    "NetworkSection",
    "OutputConfig",
    "PriorSection",
    "SVIConfig",
    "SyntheticConfig",
]

#: named data sources (anything else must be a ``.nc`` / ``.zarr`` path)
DATA_SOURCES: tuple[str, ...] = ("synthetic", "fluxval", "fluxnet-sites")
#: accepted suffixes of a canonical dataset path
DATASET_SUFFIXES: tuple[str, ...] = (".nc", ".nc4", ".zarr")
#: values of ``data.site_split``
SITE_SPLITS: tuple[str, ...] = ("train", "validation", "test", "all")
#: values of ``model.fixed_at``
FIXED_AT: tuple[str, ...] = ("default_site", "table")

#: a value check: None if fine, else a message ("expected ..."), or (sub-path, message,
#: offending value) for a problem with one item of an array
Check = Callable[[Any], "str | tuple[str, str, Any] | None"]


# --------------------------------------------------------------------------- constraints


def _choices(*allowed: str) -> Check:
    def check(v: Any) -> str | None:
        if v in allowed:
            return None
        return "expected one of " + ", ".join(repr(a) for a in allowed)

    return check


def _range(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
           hi_open: bool = False, kind: str = "a number") -> Check:  # fmt: skip
    def check(v: Any) -> str | None:
        bad = (lo is not None and (v <= lo if lo_open else v < lo)) or (
            hi is not None and (v >= hi if hi_open else v > hi)
        )
        if not bad:
            return None
        parts = []
        if lo is not None:
            parts.append(f"{'>' if lo_open else '>='} {lo:g}")
        if hi is not None:
            parts.append(f"{'<' if hi_open else '<='} {hi:g}")
        return f"expected {kind} " + " and ".join(parts)

    return check


def _items(check: Check) -> Check:
    def inner(v: Any) -> tuple[str, str, Any] | None:
        for i, item in enumerate(v):
            msg = check(item)
            if msg:
                return f"[{i}]", str(msg), item
        return None

    return inner


def _unique(v: Any) -> str | None:
    dupes = sorted({x for x in v if list(v).count(x) > 1})
    return f"expected distinct values, found {dupes} more than once" if dupes else None


def _non_empty(v: Any) -> str | None:
    return None if str(v).strip() else "expected a non-empty name"


def _all(*checks: Check) -> Check:
    def inner(v: Any) -> str | tuple[str, str, Any] | None:
        for c in checks:
            msg = c(v)
            if msg:
                return msg
        return None

    return inner


_STREAM = _choices(*STREAMS)
_POSITIVE = _range(0, lo_open=True, kind="a number")
_NON_NEGATIVE = _range(0, kind="a number")
_POS_INT = _range(1, kind="an integer")
_NON_NEG_INT = _range(0, kind="an integer")


def _f(default: Any, doc: str, check: Check | None = None) -> Any:
    """Declare a schema field: default, documentation and an optional value check."""
    meta = {"doc": doc, "check": check}
    if isinstance(default, Mapping):
        return field(default_factory=lambda: FrozenMap(default), metadata=meta)
    if isinstance(default, type):  # a section
        return field(default_factory=default, metadata=meta)
    return field(default=default, metadata=meta)


# --------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class SyntheticConfig:
    """``[data.synthetic]``: the synthetic world of ``data.source = "synthetic"``."""

    sites: int = _f(32, "number of sites", _POS_INT)
    years: int = _f(4, "calendar years simulated (from 2001)", _POS_INT)
    seed: int = _f(0, "seed of the world (same seed, same data)", _NON_NEG_INT)
    free_parameters: tuple[str, ...] = _f(
        (), "parameters whose truth varies with the environment; [] = all of them", _unique
    )
    streams: tuple[str, ...] = _f(
        (), "streams generated; [] = gpp nee et lai", _all(_items(_STREAM), _unique)
    )
    gap_fraction: float = _f(0.3, "target fraction of missing observations", _range(0, 0.95))


@dataclass(frozen=True)
class DataConfig:
    """``[data]``: where the observations come from and which of them are fitted."""

    source: str = _f(
        "synthetic",
        "'synthetic', 'fluxval', 'fluxnet-sites' or the path of a canonical .nc/.zarr "
        "dataset (relative paths: against $DIFFERLAND_DATA_DIR, default ../shared/data)",
    )
    streams: tuple[str, ...] = _f(
        (), "streams fitted; [] = every stream present that the model predicts",
        _all(_items(_STREAM), _unique),
    )  # fmt: skip
    split: int = _f(
        1,
        "fit the observations with split_time == split (1 = training)",
        _range(0, 2, kind="an integer"),
    )
    site_split: str = _f(
        "train", "sites fitted: those whose split_site is this value, or 'all'",
        _choices(*SITE_SPLITS),
    )  # fmt: skip
    sites: tuple[str, ...] = _f((), "only these site ids; [] = all", _unique)
    spinup_steps: int = _f(
        0,
        "initial model steps of the time axis (all sites) whose observations are ignored",
        _NON_NEG_INT,
    )
    holdout_fraction: float = _f(
        0.0,
        "fraction of the data held out for early stopping (0 = no early stopping): of the "
        "sites, or of every site's observed steps (data.holdout)",
        _range(0, 1, hi_open=True),
    )
    holdout: str = _f(
        "sites",
        "what data.holdout_fraction holds out: 'sites' (that fraction of the sites, every "
        "observation of theirs) or 'months' (the last fraction of every site's observed "
        "steps, all streams from the same step on)",
        _choices("sites", "months"),
    )
    period: str = _f(
        "common",
        "fluxnet-sites only: time axis 'common' (days all chosen sites share) or 'union'",
        _choices("common", "union"),
    )
    observation_step: str = _f(
        "model",
        "'model' (observations on the model steps) or 'monthly' (daily observations "
        "compared as calendar-month means, a month counting when >= 50 % of its days are "
        "observed, with the daily model averaged over the same days; for dalec990)",
        _choices("model", "monthly"),
    )
    derive: tuple[str, ...] = _f(
        (),
        "predictors computed from each site's forcing (lai_*: from its satellite LAI) and "
        "added to env, for the "
        "fit and for the sites it predicts (any of " + ", ".join(DERIVED_PREDICTORS) + "; "
        "[] = only the source's own)",
        _all(_items(_choices(*DERIVED_PREDICTORS)), _unique),
    )
    predictors: tuple[str, ...] = _f(
        (),
        "predictors of the prior network: names of the dataset's env features (inputs in "
        "this order) and 'vegetation_class' (the one-hot class columns, last); [] = every "
        "feature and the classes. Stored with the run: predictions and reports encode new "
        "sites the same way",
        _all(_items(_non_empty), _unique),
    )
    synthetic: SyntheticConfig = _f(SyntheticConfig, "synthetic world")


@dataclass(frozen=True)
class ModelSection:
    """``[model]``: the process model and which of its parameters are estimated."""

    process: str = _f("dalec993", "process model", _choices(*MODELS))
    mode: str = _f("faithful", "numerics of the process model", _choices(*MODES))
    water_stress: str = _f(
        "default",
        "water-stress option of the process model: 'default', 'nothing' (dalec993) / "
        "'baseline' (dalec990), or a hybrid network: 'nn_paw' (water-stress factor) or "
        "'nn_whole' (GPP and ET)",
    )
    fix_uninformed: bool = _f(
        True, "hold the parameters that no fitted stream informs at their defaults"
    )
    free_parameters: tuple[str, ...] = _f(
        (), "if set, estimate only these parameters and hold every other one fixed", _unique
    )
    fixed_at: str = _f(
        "default_site",
        "values of parameters held fixed by free_parameters: 'default_site' (the embedded "
        "default site) or 'table' (geometric mean of the bounds)",
        _choices(*FIXED_AT),
    )
    fixed_parameters: Mapping[str, float] = _f(
        {}, "parameters held at these physical values (name = value); override the above"
    )
    circular_phases: bool = _f(
        False,
        "sample the phenology phases (Bday, Fday) as angles on the circle of the year "
        "(wrapped-normal hierarchy) instead of on the published bounded transform, whose "
        "range holds three windings a year apart",
    )


_NET = NetworkConfig()
_LIK = LikelihoodConfig()
_MOD = ModelConfig()


@dataclass(frozen=True)
class NetworkSection:
    """``[network]``: the environment -> parameter prior network."""

    hidden: tuple[int, ...] = _f(
        _NET.hidden, "widths of the hidden layers ([] = linear)", _items(_POS_INT)
    )
    activation: str = _f(_NET.activation, "activation", _choices(*ACTIVATIONS))
    negative_slope: float = _f(_NET.negative_slope, "slope of leaky_relu below 0", _NON_NEGATIVE)
    bayesian_weights: bool = _f(
        _NET.bayesian_weights, "weights as latent variables (true) or point estimates"
    )
    weight_prior_scale: float = _f(
        _NET.weight_prior_scale, "weight prior sd times sqrt(fan_in)", _POSITIVE
    )
    bias_prior_scale: float = _f(_NET.bias_prior_scale, "bias prior sd", _POSITIVE)
    predict_scale: bool = _f(
        _MOD.predict_scale, "also predict a per-site multiplier of the residual sd"
    )
    scale_floor: float = _f(
        _NET.scale_floor, "lower bound of that multiplier", _range(0, 1, lo_open=True, hi_open=True)
    )


@dataclass(frozen=True)
class LikelihoodSection:
    """``[likelihood]``: the observation model of every stream."""

    family: str = _f(_LIK.family, "distribution of the observations", _choices(*FAMILIES))
    df: float = _f(_LIK.df, "degrees of freedom of student_t", _POSITIVE)
    use_data_uncertainty: bool = _f(
        _LIK.use_data_uncertainty, "use <stream>_unc as the noise sd where the data have it"
    )
    add_learned_noise: bool = _f(
        _LIK.add_learned_noise, "with data uncertainty, also learn a per-stream noise sd"
    )
    discrepancy: tuple[str, ...] = _f(
        (),
        "streams with a seasonal model discrepancy: a per-site, per-calendar-month "
        "correction of the prediction and a learned share rho of the model's interannual "
        "anomaly (Kennedy-O'Hagan); [] = none",
        _all(_items(_STREAM), _unique),
    )
    discrepancy_prior_scale: Mapping[str, float] = _f(
        {},
        "scale of the HalfNormal prior of a discrepancy sd, per stream (stream = scale; "
        "default the stream's noise prior scale)",
    )
    discrepancy_mean: str = _f(
        _LIK.discrepancy_mean,
        "prior mean of a site's discrepancy: zero, or environment (linear in the site's "
        "standardised environment on a few annual harmonics, learned with the fit and "
        "carried to new sites)",
        _choices(*DISCREPANCY_MEANS),
    )
    discrepancy_harmonics: int = _f(
        _LIK.discrepancy_harmonics,
        "annual harmonics of the environment mean (0 = a constant offset)",
        _range(0, MAX_DISCREPANCY_HARMONICS, kind="an integer"),
    )
    noise_prior_scale: Mapping[str, float] = _f(
        {}, "scale of the HalfNormal prior of a learned noise sd, per stream (stream = scale)"
    )
    relative_noise: tuple[str, ...] = _f(
        (),
        "streams whose noise sd grows with the flux: sqrt(base**2 + (relnoise * "
        "|flux|)**2) with a learned fraction relnoise_<stream>, flux the observation (the "
        "prediction when drawing new ones); [] = constant noise",
        _all(_items(_STREAM), _unique),
    )
    relative_noise_prior_scale: float = _f(
        _LIK.relative_noise_prior_scale,
        "scale of the HalfNormal prior of each relnoise_<stream> (a fraction)",
        _POSITIVE,
    )
    default_noise_prior_scale: float = _f(
        _LIK.default_noise_prior_scale, "that scale for streams without a default", _POSITIVE
    )


@dataclass(frozen=True)
class PriorSection:
    """``[prior]``: the hierarchy's priors and the optional EDC potential."""

    sigma_prior_scale: float = _f(
        _MOD.sigma_prior_scale, "median of the LogNormal prior of sigma (z units)", _POSITIVE
    )
    sigma_prior_log_sd: float = _f(_MOD.sigma_prior_log_sd, "log-scale sd of it", _POSITIVE)
    sigma_floor: float = _f(_MOD.sigma_floor, "constant added to sigma", _NON_NEGATIVE)
    edc_scale: float = _f(0.0, "weight of the steady-state EDC potential (0 = off)", _NON_NEGATIVE)


@dataclass(frozen=True)
class EarlyStoppingConfig:
    """``[svi.early_stopping]``: stop on the held-out sites' loss."""

    every: int = _f(100, "evaluate the held-out loss every this many steps", _POS_INT)
    patience: int = _f(10, "evaluations without improvement before stopping", _POS_INT)
    min_delta: float = _f(0.0, "improvement that resets the patience", _NON_NEGATIVE)
    num_particles: int = _f(
        0,
        "particles of the held-out ELBO (0 = svi.num_particles; with svi.batch_size, where "
        "the held-out loss is estimated on random site batches, enough to cover every site "
        "once on average)",
        _NON_NEG_INT,
    )


@dataclass(frozen=True)
class SVIConfig:
    """``[svi]``: guide, optimiser and schedule of stochastic variational inference."""

    guide: str = _f(
        "normal",
        "variational family: 'normal' (mean field), 'lowrank', 'delta' (MAP) or 'site_mvn' "
        "(a full covariance matrix per site over its residuals)",
        _choices(*GUIDE_KINDS),
    )
    rank: int = _f(
        0,
        "rank of the global latents' covariance: lowrank (0 = NumPyro's default) or "
        "site_mvn (0 = mean field)",
        _NON_NEG_INT,
    )
    init_scale: float = _f(0.1, "initial posterior scale of the guide", _POSITIVE)
    loss: str = _f("trace", "ELBO estimator", _choices(*LOSS_KINDS))
    steps: int = _f(2000, "total optimisation steps", _POS_INT)
    batch_size: int = _f(0, "sites per step (0 = all)", _NON_NEG_INT)
    lr: float = _f(0.01, "peak learning rate", _POSITIVE)
    clip_norm: float = _f(10.0, "clip gradients to this global norm (0 = off)", _NON_NEGATIVE)
    schedule: str = _f("cosine", "learning-rate schedule after warm-up", _choices(*SCHEDULES))
    warmup: int = _f(0, "linear warm-up steps", _NON_NEG_INT)
    end_lr_factor: float = _f(
        0.01, "final rate / lr for decaying schedules", _range(0, 1, lo_open=True)
    )
    num_particles: int = _f(1, "particles per ELBO estimate", _POS_INT)
    seed: int = _f(0, "seed of the network, the held-out sites and SVI", _NON_NEG_INT)
    checkpoint_every: int = _f(500, "checkpoint period in steps (0 = at the end only)",
                               _NON_NEG_INT)  # fmt: skip
    log_every: int = _f(0, "log the loss every this many steps (0 = steps / 10)", _NON_NEG_INT)
    early_stopping: EarlyStoppingConfig = _f(EarlyStoppingConfig, "early stopping")
    map_steps: int = _f(0, "MAP (AutoDelta) warm-start steps before SVI (0 = off)",
                        _NON_NEG_INT)  # fmt: skip
    map_lr: float = _f(0.01, "learning rate of the MAP warm start", _POSITIVE)
    map_sigma_rounds: int = _f(
        0,
        "empirical-Bayes rounds of the MAP warm start: the second half of map_steps holds "
        "sigma at the spread of the sites' MAP residuals, re-estimated each round (0 = off)",
        _NON_NEG_INT,
    )
    px_every: int = _f(
        0,
        "parameter-expansion step every this many SVI steps: sigma and the sites' eps are "
        "rescaled to the ELBO's optimum along the direction that changes no z, which "
        "minibatch gradients barely move along (needs guide 'normal' and "
        "prior.sigma_floor = 0; 0 = off)",
        _NON_NEG_INT,
    )


@dataclass(frozen=True)
class OutputConfig:
    """``[output]``: what is made from the fit afterwards."""

    posterior_samples: int = _f(200, "posterior draws for predictions and reports", _POS_INT)


@dataclass(frozen=True)
class FitConfig:
    """The whole configuration of a fit (one field per TOML section)."""

    data: DataConfig = _f(DataConfig, "data source and selection")
    model: ModelSection = _f(ModelSection, "process model and its parameters")
    network: NetworkSection = _f(NetworkSection, "prior network")
    likelihood: LikelihoodSection = _f(LikelihoodSection, "observation model")
    prior: PriorSection = _f(PriorSection, "priors of the hierarchy")
    svi: SVIConfig = _f(SVIConfig, "variational inference")
    output: OutputConfig = _f(OutputConfig, "outputs")

    def model_config(self, fixed_parameters: Mapping[str, float]) -> ModelConfig:
        """Build the :class:`~.config.ModelConfig` of this fit.

        Parameters
        ----------
        fixed_parameters : mapping of str to float
            The resolved fixed parameters (``model.fixed_parameters`` plus those fixed by
            ``fix_uninformed`` / ``free_parameters``; see
            :func:`~differland_bayes.bayes.fit.resolve_fixed_parameters`).

        Returns
        -------
        ModelConfig
            The validated model configuration.
        """
        n, lk, pr = self.network, self.likelihood, self.prior
        return ModelConfig(
            network=NetworkConfig(
                hidden=tuple(n.hidden),
                activation=n.activation,
                negative_slope=n.negative_slope,
                bayesian_weights=n.bayesian_weights,
                weight_prior_scale=n.weight_prior_scale,
                bias_prior_scale=n.bias_prior_scale,
                scale_floor=n.scale_floor,
            ),
            likelihood=LikelihoodConfig(
                family=lk.family,
                df=lk.df,
                use_data_uncertainty=lk.use_data_uncertainty,
                add_learned_noise=lk.add_learned_noise,
                noise_prior_scale=dict(lk.noise_prior_scale),
                default_noise_prior_scale=lk.default_noise_prior_scale,
                discrepancy=tuple(lk.discrepancy),
                discrepancy_prior_scale=dict(lk.discrepancy_prior_scale),
                discrepancy_mean=lk.discrepancy_mean,
                discrepancy_harmonics=lk.discrepancy_harmonics,
                relative_noise=tuple(lk.relative_noise),
                relative_noise_prior_scale=lk.relative_noise_prior_scale,
            ),
            sigma_prior_scale=pr.sigma_prior_scale,
            sigma_prior_log_sd=pr.sigma_prior_log_sd,
            sigma_floor=pr.sigma_floor,
            edc_scale=pr.edc_scale if pr.edc_scale > 0 else None,
            fixed_parameters=dict(fixed_parameters),
            predict_scale=n.predict_scale,
            circular_phases=self.model.circular_phases,
        )
