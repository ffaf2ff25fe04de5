"""Penalised additive regression of site parameters on the environment, per draw.

The posterior-driven trait–environment analyses (partial dependence, variance
partitioning, permutation importance) regress, for every posterior draw ``d`` and
parameter ``p``, the site values ``y_dsp`` (on the analysis scale) on the site's
environment with the same smoother:

* **basis** (:class:`AdditiveBasis`): per continuous predictor a penalised linear spline,
  ``u, (u - k_1)_+, ..., (u - k_K)_+`` with ``u`` the standardised predictor and knots
  ``k`` at its quantiles (an additive model, flexible but smooth); one dummy per
  vegetation class (all classes, no reference level); optionally class-specific slopes
  ``u * 1[class = c]``.
* **fit** (:func:`fit_ridge`): ridge regression with an unpenalised intercept and one
  penalty ``lambda`` on every other column (a Gaussian random-effect view: every
  coefficient shrunk alike), ``lambda`` chosen per parameter by generalised
  cross-validation pooled over the draws, then held fixed across draws.

Why this smoother: it is linear in the data, so one SVD of the design serves every draw
and parameter, and the per-draw fits differ only through the posterior draws of the
site parameters (the credible bands then reflect posterior uncertainty, not a
smoothing choice that varies between draws); the penalty keeps it stable with few sites
per predictor; the effective degrees of freedom ``df = 1 + sum s^2 / (s^2 + lambda)``
give adjusted R² that are not inflated by flexibility.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ._trait_base import CLASS_FEATURE

__all__ = ["AdditiveBasis", "RidgeFit", "bootstrap_weights", "fit_ridge"]

log = logging.getLogger(__name__)

#: relative penalties searched by GCV (times the mean squared singular value)
LAMBDA_GRID = np.logspace(-5, 2, 29)


@dataclass(frozen=True)
class AdditiveBasis:
    """Design of the additive model (built once from the observed sites).

    Use :meth:`build`; :meth:`design` evaluates it at any environment.
    """

    features: tuple[str, ...]  #: continuous predictors
    centre: np.ndarray  #: their observed means
    spread: np.ndarray  #: their observed sds (1 where constant)
    knots: tuple[np.ndarray, ...]  #: knots of each predictor, standardised
    n_classes: int  #: number of vegetation classes
    use_env: bool  #: include the continuous predictors
    use_class: bool  #: include the class dummies
    class_slopes: bool  #: include class-specific linear slopes

    @classmethod
    def build(
        cls,
        x: np.ndarray,
        n_classes: int,
        *,
        features: tuple[str, ...],
        n_knots: int = 3,
        use_env: bool = True,
        use_class: bool = True,
        class_slopes: bool = False,
    ) -> AdditiveBasis:
        """Basis for the observed predictors ``x`` ``(site, feature)``.

        Parameters
        ----------
        x : numpy.ndarray
            Continuous predictors of the sites, in their units.
        n_classes : int
            Number of vegetation classes.
        features : tuple of str
            Predictor names (columns of ``x``).
        n_knots : int
            Interior knots per predictor (at evenly spaced quantiles; fewer for
            predictors with few distinct values; 0 gives a linear model).
        use_env, use_class, class_slopes : bool
            Which blocks of columns to include.
        """
        if n_knots < 0:
            raise ValueError(f"n_knots: expected an integer >= 0, found {n_knots}")
        x = np.asarray(x, dtype=np.float64)
        centre = x.mean(axis=0)
        sd = x.std(axis=0)
        spread = np.where(sd > 0, sd, 1.0)
        knots = []
        for j in range(x.shape[1]):
            u = (x[:, j] - centre[j]) / spread[j]
            distinct = np.unique(u)
            k = min(n_knots, max(len(distinct) - 2, 0))
            q = np.quantile(u, np.arange(1, k + 1) / (k + 1)) if k else np.zeros(0)
            knots.append(np.unique(q))
        return cls(
            features=tuple(features),
            centre=centre,
            spread=spread,
            knots=tuple(knots),
            n_classes=int(n_classes),
            use_env=use_env,
            use_class=use_class,
            class_slopes=class_slopes and use_env and use_class,
        )

    def column_groups(self) -> list[str]:
        """Predictor (feature name or ``vegetation_class``) of each design column."""
        groups: list[str] = []
        if self.use_env:
            for f, k in zip(self.features, self.knots, strict=True):
                groups += [f] * (1 + len(k) + (self.n_classes if self.class_slopes else 0))
        if self.use_class:
            groups += [CLASS_FEATURE] * self.n_classes
        return groups

    def design(self, x: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Design matrix ``(site, column)`` at predictors ``x`` and class codes."""
        x = np.asarray(x, dtype=np.float64)
        onehot = (np.asarray(codes)[:, None] == np.arange(self.n_classes)[None, :]).astype(float)
        cols: list[np.ndarray] = []
        if self.use_env:
            u = (x - self.centre) / self.spread
            for j, k in enumerate(self.knots):
                cols.append(u[:, j : j + 1])
                if len(k):
                    cols.append(np.maximum(u[:, j : j + 1] - k[None, :], 0.0))
                if self.class_slopes:
                    cols.append(u[:, j : j + 1] * onehot)
        if self.use_class:
            cols.append(onehot)
        if not cols:
            return np.zeros((x.shape[0], 0))
        return np.concatenate(cols, axis=1)


@dataclass(frozen=True)
class RidgeFit:
    """Ridge fits of every draw and parameter on one design (:func:`fit_ridge`)."""

    x_mean: np.ndarray  #: ``(draw, column)`` (weighted) column means of the design
    y_mean: np.ndarray  #: ``(draw, parameter)`` (weighted) means of the responses
    coef: np.ndarray  #: ``(parameter, draw, column)`` slopes
    lam: np.ndarray  #: ``(parameter,)`` penalty (absolute)
    df: np.ndarray  #: ``(draw, parameter)`` effective degrees of freedom, with intercept
    rss: np.ndarray  #: ``(draw, parameter)`` (weighted) residual sum of squares
    tss: np.ndarray  #: ``(draw, parameter)`` (weighted) total sum of squares
    n: int  #: number of sites

    def r2(self, *, adjusted: bool = True) -> np.ndarray:
        """``(draw, parameter)`` R², adjusted by the effective degrees of freedom.

        Adjusted: ``1 - (rss / (n - df)) / (tss / (n - 1))``; NaN where a parameter is
        constant across sites.
        """
        ok = self.tss > 0
        if adjusted:
            num = self.rss / np.maximum(self.n - self.df, 1e-12)
            den = self.tss / (self.n - 1)
        else:
            num, den = self.rss, self.tss
        return np.where(ok, 1.0 - num / np.where(ok, den, 1.0), np.nan)

    def predict(self, design: np.ndarray) -> np.ndarray:
        """``(draw, site, parameter)`` predictions at design rows ``(site, column)``."""
        dx = np.asarray(design, dtype=np.float64)[None, :, :] - self.x_mean[:, None, :]
        return self.y_mean[:, None, :] + np.einsum("dnk,pdk->dnp", dx, self.coef)


def bootstrap_weights(n_draw: int, n_site: int, seed: int) -> np.ndarray:
    """Bayesian-bootstrap site weights ``(draw, site)``: ``n * Dirichlet(1, ..., 1)``."""
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.ones(n_site), size=n_draw) * n_site


class _Moments:
    """Weighted centred cross-products of the design and responses, eigen-decomposed.

    With site weights ``w`` (mean 1) per draw, ``G = Xc' W Xc = V diag(ev) V'`` (one
    batched ``eigh`` for every draw) and ``proj = V' Xc' W yc``; the ridge fit with
    penalty ``lam`` then has shrinkage ``h = ev / (ev + lam)``, coefficients
    ``V (proj / (ev + lam))`` and ``rss = tss - sum (2 h - h^2) proj^2 / ev``.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, w: np.ndarray) -> None:
        n = x.shape[0]
        wn = w / w.mean(axis=1, keepdims=True)  # (dw, n), dw = 1 or draws
        x0, y0 = x.mean(axis=0), y.mean(axis=1, keepdims=True)  # shift first: no cancellation
        x, y = x - x0, y - y0
        xm = wn @ x / n  # (dw, k)
        ym = (wn[:, :, None] * y).sum(axis=1) / n  # (d, p)
        self.x_mean = xm + x0
        self.y_mean = ym + y0[:, 0, :]
        xw = x.T[None] * wn[:, None, :]  # (dw, k, n)
        gram = xw @ x - n * xm[:, :, None] * xm[:, None, :]
        xty = xw @ y - n * xm[:, :, None] * ym[:, None, :]  # (d, k, p)
        self.tss = (wn[:, :, None] * y**2).sum(axis=1) - n * ym**2
        ev, vec = np.linalg.eigh(gram)
        keep = ev > 1e-10 * np.maximum(ev.max(axis=1, keepdims=True), 1e-300)
        self.ev = np.where(keep, ev, np.inf)  # dropped directions: zero shrinkage
        self.vec = vec
        self.proj = np.where(keep[:, :, None], np.swapaxes(vec, 1, 2) @ xty, 0.0)
        self.n_comp = keep.sum(axis=1)

    def shrink(self, lam: np.ndarray) -> np.ndarray:
        """``(d, component, parameter)`` shrinkage for penalties ``lam (parameter,)``."""
        ev = self.ev[:, :, None]
        finite = np.isfinite(ev)
        ev = np.where(finite, ev, 1.0)
        return np.where(finite, ev / (ev + lam[None, None, :]), 0.0)

    def rss(self, h: np.ndarray) -> np.ndarray:
        """``(draw, parameter)`` residual sums of squares for shrinkage ``h``."""
        gain = ((2 * h - h**2) * self.proj**2 / self.ev[:, :, None]).sum(axis=1)
        return np.maximum(self.tss - gain, 0.0)


def _gcv_penalty(x: np.ndarray, y: np.ndarray, penalty: float | None) -> np.ndarray:
    """Absolute penalty per parameter: GCV on the unweighted fits pooled over draws."""
    n, n_par = x.shape[0], y.shape[2]
    if x.shape[1] == 0:
        return np.zeros(n_par)
    m = _Moments(x, y, np.ones((1, n)))
    finite = np.isfinite(m.ev[0])
    if not finite.any():
        return np.zeros(n_par)
    grid = float(np.mean(m.ev[0][finite])) * (
        LAMBDA_GRID if penalty is None else np.array([penalty])
    )
    if penalty is not None:
        return np.full(n_par, grid[0])
    scores = []
    for lam in grid:
        h = m.shrink(np.full(n_par, lam))
        df = 1.0 + h[0, :, 0].sum()
        rss = m.rss(h).sum(axis=0)  # pooled over draws
        scores.append(n * rss / max(n - df, 1e-12) ** 2 if df <= n - 2 else np.full(n_par, np.inf))
    scores = np.array(scores)  # (lambda, parameter)
    if not np.isfinite(scores).any():
        return np.full(n_par, grid[-1])
    return grid[np.argmin(scores, axis=0)]


def fit_ridge(
    design: np.ndarray,
    y: np.ndarray,
    *,
    penalty: float | None = None,
    weights: np.ndarray | None = None,
) -> RidgeFit:
    """Fit every draw and parameter by ridge regression with a GCV-chosen penalty.

    Parameters
    ----------
    design : numpy.ndarray
        ``(site, column)`` design (:meth:`AdditiveBasis.design`), without intercept.
    y : numpy.ndarray
        ``(draw, site, parameter)`` responses on the analysis scale.
    penalty : float, optional
        Fixed penalty relative to the mean eigenvalue of the centred design's
        cross-product; default: chosen per parameter from :data:`LAMBDA_GRID` by
        generalised cross-validation ``n * RSS / (n - df)^2`` of the unweighted fits,
        the RSS summed over draws (only penalties leaving ``df <= n - 2``).
    weights : numpy.ndarray, optional
        ``(draw, site)`` site weights of each draw's fit (e.g.
        :func:`bootstrap_weights`, which adds the uncertainty of having observed
        these sites to the posterior uncertainty); default equal weights.

    Returns
    -------
    RidgeFit
        Coefficients, penalties, degrees of freedom and sums of squares.
    """
    x = np.asarray(design, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n_draw, n, n_par = y.shape
    if x.ndim != 2 or x.shape[0] != n:
        raise ValueError(f"design: expected {n} rows (sites of y), found shape {x.shape}")
    if weights is None:
        w = np.ones((1, n))
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (n_draw, n) or np.any(w < 0) or np.any(w.sum(axis=1) <= 0):
            raise ValueError(
                f"weights: expected non-negative weights of shape ({n_draw}, {n}), found {w.shape}"
            )
    lam = _gcv_penalty(x, y, penalty)
    k = x.shape[1]
    m = _Moments(x, y, w)
    x_mean = np.broadcast_to(m.x_mean, (n_draw, k)).copy()
    y_mean = np.broadcast_to(m.y_mean, (n_draw, n_par)).copy()
    tss = np.broadcast_to(m.tss, (n_draw, n_par)).copy()
    if k == 0:
        zeros = np.zeros((n_par, n_draw, 0))
        return RidgeFit(x_mean, y_mean, zeros, lam, np.ones((n_draw, n_par)), tss, tss, n)
    h = m.shrink(lam)  # (dw, component, parameter)
    coef = m.vec @ (m.proj / (m.ev[:, :, None] + lam[None, None, :]))  # (d, k, p)
    coef = np.broadcast_to(coef, (n_draw, k, n_par)).transpose(2, 0, 1).copy()
    df = np.broadcast_to(1.0 + h.sum(axis=1), (n_draw, n_par)).copy()
    rss = np.broadcast_to(m.rss(h), (n_draw, n_par)).copy()
    log.debug("ridge fit: penalties %s", lam)
    return RidgeFit(x_mean, y_mean, coef, lam, df, rss, tss, n)
