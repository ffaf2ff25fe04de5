"""Trait–environment sections of ``differland report``.

Each function takes the run's DataTree (:func:`~.datatree.to_datatree`) and returns
figures and tables of one analysis, computed per posterior draw of the site parameters
(group ``posterior``, variable ``parameters``) against the environment
(``constant_data/env``) and vegetation class (``constant_data/vegetation_class``):
partial dependence, variance partitioning, latent axes, permutation importance, and
equifinality (within-site posterior correlation and posterior-to-prior contraction).
:data:`TRAIT_SECTIONS` lists them for :data:`~.report.REPORT_SECTIONS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

__all__ = ["TRAIT_SECTIONS", "trait_inputs"]

Result = tuple[Mapping[str, Figure], Mapping[str, pd.DataFrame]]


def trait_inputs(dt: xr.DataTree) -> tuple[xr.DataArray, xr.DataArray, Any]:
    """Return ``(theta, env, vegetation_class)`` of a run's DataTree.

    Raises
    ------
    ValueError
        If the tree lacks ``posterior/parameters`` or ``constant_data/env``.
    """
    try:
        theta = dt["posterior"]["parameters"]
        env = dt["constant_data"]["env"]
    except KeyError as e:
        raise ValueError(
            f"DataTree: expected posterior/parameters and constant_data/env, missing {e}"
        ) from e
    const = dt["constant_data"]
    veg = const["vegetation_class"].values if "vegetation_class" in const.variables else None
    return theta, env, veg


def _table(ds: xr.Dataset, max_dims: int = 3) -> pd.DataFrame:
    """Return the variables of ``ds`` with at most ``max_dims`` dims as one long table."""
    keep = [v for v in ds.data_vars if ds[v].ndim <= max_dims]
    if not keep:
        return pd.DataFrame()
    frames = [
        (ds[v].to_dataframe(name="value").reset_index() if ds[v].ndim
         else pd.DataFrame({"value": [ds[v].item()]})).assign(variable=v)
        for v in keep
    ]  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def partial_dependence_section(dt: xr.DataTree) -> Result:
    """Partial dependence of every parameter on every environment variable."""
    from .partial_dependence import partial_dependence
    from .traits_plots import plot_partial_dependence

    theta, env, veg = trait_inputs(dt)
    pd_ = partial_dependence(theta, env, veg)
    return {"partial dependence": plot_partial_dependence(pd_)}, {"partial_dependence": _table(pd_)}


def variance_section(dt: xr.DataTree) -> Result:
    """Shares of across-site variance: vegetation class, environment, shared, residual."""
    from .traits_plots import plot_variance_partition
    from .variance import variance_partition

    theta, env, veg = trait_inputs(dt)
    vp = variance_partition(theta, env, veg)
    return {"variance partitioning": plot_variance_partition(vp)}, {
        "variance_partition": _table(vp)
    }


def latent_section(dt: xr.DataTree) -> Result:
    """Principal axes of the standardised site-parameter matrix."""
    from .latent import latent_axes
    from .traits_plots import plot_latent_axes

    theta, env, veg = trait_inputs(dt)
    la = latent_axes(theta, env, veg, n_axes=min(3, theta.sizes["parameter"]))
    return (
        {"latent axes": plot_latent_axes(la, vegetation_class=veg)},
        {"latent_axes": _table(la, max_dims=2)},
    )


def importance_section(dt: xr.DataTree) -> Result:
    """Permutation importance of each environment variable for each parameter."""
    from .attribution import permutation_importance
    from .traits_plots import plot_importance

    theta, env, veg = trait_inputs(dt)
    imp = permutation_importance(theta, env, veg)
    return {"importance": plot_importance(imp)}, {"importance": _table(imp)}


def equifinality_section(dt: xr.DataTree) -> Result:
    """Within-site posterior correlations and posterior-to-prior contraction."""
    from .equifinality import contraction, posterior_correlation
    from .traits_plots import plot_contraction, plot_correlation

    theta, _, _ = trait_inputs(dt)
    corr = posterior_correlation(theta)
    figs: dict[str, Figure] = {"posterior correlation": plot_correlation(corr)}
    tables = {"posterior_correlation": _table(corr, max_dims=2)}
    if "prior" in dt.children and "parameters" in dt["prior"]:
        con = contraction(theta, dt["prior"]["parameters"])
        figs["contraction"] = plot_contraction(con)
        tables["contraction"] = _table(con, max_dims=2)
    return figs, tables


#: (title, builder) of every trait–environment section, in report order
TRAIT_SECTIONS: list[tuple[str, Callable[[xr.DataTree], Result]]] = [
    ("Trait–environment: partial dependence", partial_dependence_section),
    ("Trait–environment: variance partitioning", variance_section),
    ("Trait–environment: latent axes", latent_section),
    ("Trait–environment: importance", importance_section),
    ("Equifinality and constraint", equifinality_section),
]
