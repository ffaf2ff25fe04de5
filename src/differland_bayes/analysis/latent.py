"""Latent axes along which the site parameters co-vary (PCA per posterior draw).

For every draw the site × parameter matrix (analysis scale, ``log`` by default) is
standardised per parameter (mean 0, sd 1 across sites) and decomposed by a principal
component analysis. Per draw and axis ``k``:

* ``loading`` — correlation of each parameter with the axis (eigenvector times the
  square root of its eigenvalue; a trait spectrum's coordinates);
* ``score`` — the sites' positions on the axis (unit variance);
* ``explained`` — fraction of the total (standardised) variance on the axis;
* ``env_correlation`` — correlation of the scores with each predictor (and with each
  vegetation-class dummy).

Eigenvectors are defined up to sign and, for close eigenvalues, up to order, so every
draw's axes are **aligned** to a reference, the PCA of the posterior-mean standardised
matrix: the draw's leading components are matched to the reference axes by the largest
absolute cosines (best assignment), then flipped so that each cosine is positive.
``alignment`` reports the cosines (near 1: a well identified axis; low: the axis is
not stable across draws and its bands mix different directions).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from ._trait_base import (
    CLASS_PREFIX,
    DEFAULT_PROB,
    check_prob,
    env_inputs,
    summary_vars,
    theta_inputs,
)

__all__ = ["latent_axes"]

log = logging.getLogger(__name__)

#: reference axes up to which the best assignment is searched exhaustively
_EXHAUSTIVE = 4


def _standardise(y: np.ndarray) -> np.ndarray:
    """Columns of ``(..., site, parameter)`` to mean 0 and sd 1 across sites."""
    yc = y - y.mean(axis=-2, keepdims=True)
    sd = yc.std(axis=-2, ddof=1, keepdims=True)
    return np.where(sd > 0, yc / np.where(sd > 0, sd, 1.0), 0.0)


def _pca(z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eigenvectors ``(parameter, m)``, eigenvalues ``(m,)``, unit-variance scores."""
    n = z.shape[0]
    u, s, vt = np.linalg.svd(z, full_matrices=False)
    return vt.T, s**2 / (n - 1), u * np.sqrt(n - 1)


def _match(ref: np.ndarray, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Candidate column for each reference axis, and the signed cosines.

    Maximises the summed absolute cosine over assignments (exhaustively for a few axes,
    greedily otherwise).
    """
    cos = ref.T @ cand  # (k, m), unit vectors
    k, m = cos.shape
    a = np.abs(cos)
    if k <= _EXHAUSTIVE:
        best = max(
            itertools.permutations(range(m), k), key=lambda p: sum(a[i, j] for i, j in enumerate(p))
        )
        idx = np.array(best)
    else:
        idx = np.full(k, -1)
        work = a.copy()
        for _ in range(k):
            i, j = np.unravel_index(np.argmax(work), work.shape)
            idx[i] = j
            work[i, :] = -1.0
            work[:, j] = -1.0
    return idx, cos[np.arange(k), idx]


def latent_axes(
    theta: Any,
    env: Any = None,
    vegetation_class: Any = None,
    *,
    n_axes: int = 3,
    parameters: Sequence[str] | None = None,
    scale: str = "log",
    prob: float = DEFAULT_PROB,
) -> xr.Dataset:
    """Principal axes of the site parameters, per posterior draw, with credible bands.

    Parameters
    ----------
    theta : xarray.DataArray
        ``(sample, site, parameter)`` posterior draws of the site parameters (physical).
    env : xarray.DataArray, optional
        ``(site, feature)`` predictors, for ``env_correlation``.
    vegetation_class : array_like, optional
        ``(site,)`` labels; their dummies are correlated with the axes too.
    n_axes : int
        Axes to keep (at most the number of parameters and of sites - 1).
    parameters : sequence of str, optional
        Parameters to include (default all; constant parameters contribute nothing).
    scale : {"log", "linear"}
        Analysis scale.
    prob : float
        Probability mass of the credible bands.

    Returns
    -------
    xarray.Dataset
        ``loading_*`` (parameter, axis), ``score_*`` (site, axis), ``explained_*``
        (axis), ``env_correlation_*`` (axis, feature), ``p_loading_positive``
        (parameter, axis), ``alignment_mean`` / ``alignment_min`` (axis),
        ``reference_loading`` (parameter, axis).
    """
    prob = check_prob(prob)
    th = theta_inputs(theta, scale=scale)
    names = list(th.parameters)
    y = th.values
    if parameters is not None:
        unknown = [p for p in parameters if p not in names]
        if unknown:
            raise ValueError(f"parameters: unknown {unknown}; available {names}")
        cols = [names.index(p) for p in parameters]
        y, names = y[:, :, cols], [names[i] for i in cols]
    n_draw, n_site, n_par = y.shape
    k = int(n_axes)
    if not 1 <= k <= min(n_par, n_site - 1):
        raise ValueError(
            f"n_axes: expected 1 <= n_axes <= {min(n_par, n_site - 1)} (parameters, sites - 1), "
            f"found {n_axes}"
        )
    z = _standardise(y)
    ref_vec, _, _ = _pca(z.mean(axis=0))
    ref_vec = ref_vec[:, :k]
    ref_vec = ref_vec * np.where(ref_vec.sum(axis=0) < 0, -1.0, 1.0)  # mostly positive
    m = min(n_par, n_site - 1, k + 2)
    loading = np.empty((n_draw, n_par, k))
    score = np.empty((n_draw, n_site, k))
    explained = np.empty((n_draw, k))
    cosine = np.empty((n_draw, k))
    val_all, vec_all = np.linalg.eigh(np.swapaxes(z, 1, 2) @ z / (n_site - 1))  # batched
    val_all, vec_all = val_all[:, ::-1][:, :m], vec_all[:, :, ::-1][:, :, :m]  # descending
    for d in range(n_draw):
        vec, val = vec_all[d], np.maximum(val_all[d], 0.0)
        sc = z[d] @ vec / np.sqrt(np.where(val > 0, val, 1.0))
        idx, cos = _match(ref_vec, vec)
        sign = np.where(cos < 0, -1.0, 1.0)
        loading[d] = vec[:, idx] * sign * np.sqrt(val[idx])
        score[d] = sc[:, idx] * sign
        explained[d] = val[idx] / n_par
        cosine[d] = np.abs(cos)

    var: dict[str, xr.DataArray] = {}
    var.update(
        summary_vars("loading", loading, ("parameter", "axis"), prob=prob, units="1",
                     description="correlation of the standardised parameter with the axis")
    )  # fmt: skip
    var.update(
        summary_vars("score", score, ("site", "axis"), prob=prob, units="1",
                     description="site score on the axis (unit variance)")
    )  # fmt: skip
    var.update(
        summary_vars("explained", explained, ("axis",), prob=prob, units="1",
                     description="fraction of the standardised variance on the axis")
    )  # fmt: skip
    var["p_loading_positive"] = xr.DataArray(
        (loading > 0).mean(axis=0),
        dims=("parameter", "axis"),
        attrs={"units": "1", "description": "posterior probability that the loading is > 0"},
    )
    var["alignment_mean"] = xr.DataArray(
        cosine.mean(axis=0), dims=("axis",),
        attrs={"units": "1", "description": "mean |cosine| of the draws' axes with the reference"},
    )  # fmt: skip
    var["alignment_min"] = xr.DataArray(
        cosine.min(axis=0), dims=("axis",),
        attrs={"units": "1", "description": "smallest |cosine| with the reference"},
    )  # fmt: skip
    var["reference_loading"] = xr.DataArray(
        ref_vec, dims=("parameter", "axis"),
        attrs={"units": "1", "description": "unit eigenvectors of the posterior-mean matrix"},
    )  # fmt: skip
    coords: dict[str, Any] = {
        "parameter": names,
        "site": th.sites,
        "axis": np.arange(1, k + 1),
        "parameter_units": ("parameter", [th.units[th.parameters.index(p)] for p in names]),
    }
    if env is not None:
        e = env_inputs(env, vegetation_class, sites=th.sites)
        cols = [e.values[:, j] for j in range(e.values.shape[1])]
        feats = list(e.features)
        if len(e.classes) > 1:
            cols += [(e.codes == c).astype(float) for c in range(len(e.classes))]
            feats += [f"{CLASS_PREFIX}{c}" for c in e.classes]
        x = _standardise(np.stack(cols, axis=1)) if cols else np.zeros((n_site, 0))
        corr = np.einsum("dsk,sf->dkf", score, x) / (n_site - 1)
        var.update(
            summary_vars("env_correlation", corr, ("axis", "feature"), prob=prob, units="1",
                         description="correlation of the axis scores with the predictor")
        )  # fmt: skip
        coords["feature"] = feats
    ds = xr.Dataset(var, coords=coords)
    ds.attrs.update(
        {
            "analysis": "latent axes (PCA of the standardised site x parameter matrix)",
            "scale": scale,
            "credible_mass": prob,
            "n_sites": int(n_site),
            "n_draws": int(n_draw),
        }
    )
    return ds
