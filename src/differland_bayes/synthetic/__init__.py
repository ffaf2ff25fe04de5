"""Synthetic worlds with a known truth, for testing that a hybrid fit recovers it.

A world is ``n_sites`` sites with environments drawn from realistic ranges (latitude,
mean annual temperature and precipitation, elevation, stand age, vegetation class), a
forcing climate consistent with them (or resampled from a real canonical dataset), true
parameters that follow a known nonlinear function of the environment
(:func:`default_relationship`) plus a per-site residual, a simulation with the process
model, and noisy observations with realistic gaps and train/validation splits. The
output is a canonical dataset (``docs/data-format.md``) that also stores the truth.

>>> from differland_bayes.synthetic import synthesize
>>> world = synthesize(64, years=10, seed=0)  # doctest: +SKIP
>>> world["true_parameters"].sel(parameter="canopy_efficiency")  # doctest: +SKIP

Modules: :mod:`.climate` (sites and climate), :mod:`.relationship` (environment ->
parameters), :mod:`.observations` (noise, gaps, splits), :mod:`.resample` (forcing from
real data), :mod:`.plan` (checked arguments), :mod:`.world` (the generators),
:mod:`.rng` (per-site random streams), :mod:`.layout` (labels, units).
"""

from .climate import FEATURES, VEGETATION_CLASSES
from .layout import GENERATOR_VERSION
from .observations import DEFAULT_NOISE, NoiseSpec
from .plan import DEFAULT_STREAMS, MODEL_STREAMS
from .relationship import Relationship, default_relationship
from .world import synthesize, synthesize_to_zarr

__all__ = [
    "DEFAULT_NOISE",
    "DEFAULT_STREAMS",
    "FEATURES",
    "GENERATOR_VERSION",
    "MODEL_STREAMS",
    "VEGETATION_CLASSES",
    "NoiseSpec",
    "Relationship",
    "default_relationship",
    "synthesize",
    "synthesize_to_zarr",
]
