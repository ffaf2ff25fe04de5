"""Analysis of fitted runs with ArviZ 1.x: DataTree, diagnostics, comparison, reports.

Modules: :mod:`.datatree` (a run as an :class:`xarray.DataTree`; its numbers come from
:mod:`.draws`), :mod:`.metrics` (scores), :mod:`.diagnostics` (predictive scores, PIT),
:mod:`.loo` (PSIS-LOO), :mod:`.compare` (ELPD comparison of runs), :mod:`.plots` (figures),
:mod:`.report` (``differland report``). Names are imported lazily (JAX, ArviZ and
matplotlib load on first use); layout and meaning in ``docs/analysis.md``.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

#: public name -> module that defines it (one line per name; sorted by module)
_EXPORTS: dict[str, str] = {
    "compare_runs": "compare",
    "pit_values": "diagnostics",
    "predictive_scores": "diagnostics",
    "site_scores": "diagnostics",
    "loo": "loo",
    "loo_pit_values": "loo",
    "loo_table": "loo",
    "read_datatree": "datatree",
    "to_datatree": "datatree",
    "write_datatree": "datatree",
    "bias": "metrics",
    "coverage": "metrics",
    "nse": "metrics",
    "r2": "metrics",
    "rmse": "metrics",
    "scores": "metrics",
    "plot_elpd_comparison": "plots",
    "plot_pit_histograms": "plots",
    "plot_predicted_vs_observed": "plots",
    "plot_predictive_timeseries": "plots",
    "REPORT_SECTIONS": "report",
    "Section": "report",
    "build_report": "report",
    "partial_dependence": "partial_dependence",
    "partial_dependence_network": "partial_dependence",
    "variance_partition": "variance",
    "latent_axes": "latent",
    "permutation_importance": "attribution",
    "permutation_importance_network": "attribution",
    "posterior_correlation": "equifinality",
    "contraction": "equifinality",
    "NetworkPriorMean": "trait_network",
    "network_prior_mean": "trait_network",
    "network_prior_draws": "trait_network",
    "plot_partial_dependence": "traits_plots",
    "plot_variance_partition": "traits_plots",
    "plot_latent_axes": "traits_plots",
    "plot_importance": "traits_plots",
    "plot_correlation": "traits_plots",
    "plot_contraction": "traits_plots",
    "TRAIT_SECTIONS": "trait_sections",
    "site_seasonal_cycle": "baselines",
    "class_climatology": "baselines",
    "site_folds": "crossval",
    "score_predictions": "crossval",
}

__all__ = sorted(_EXPORTS)


class _Package(types.ModuleType):
    """The package module, keeping exported functions that share a name with their module.

    ``partial_dependence`` and ``loo`` are both functions exported here and the modules
    defining them. Importing such a module sets the package attribute to the module,
    which would make ``from differland_bayes.analysis import loo`` return the module or
    the function depending on what was imported before; the module stays reachable as
    ``differland_bayes.analysis.loo`` in :data:`sys.modules` (``from ...analysis.loo
    import ...`` works as usual).
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _EXPORTS.get(name) == name:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
