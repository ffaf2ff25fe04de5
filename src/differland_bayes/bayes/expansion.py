"""Parameter-expanded rescaling of the non-centred hierarchy during mean-field SVI.

In the hybrid model every site's unconstrained parameters are ``z = loc + sigma * eps``
(``sigma_floor = 0``). Scaling ``sigma_p`` by ``c_p`` and every ``eps_sp`` by ``1/c_p``
changes no ``z``, so the likelihood cannot tell such states apart; only the priors of
``eps`` and ``sigma`` can. Stochastic gradients move along this direction very slowly
(each site's ``eps`` is updated only when its site is in the minibatch): a minibatch fit
ends with ``E[eps**2]`` far below the 1 its prior asks for and ``sigma`` inflated to
compensate, which widens predictions at new sites. Parameter-expanded variational Bayes
(Qi & Jaakkola 2006) takes the optimal step along the direction in closed form.

Under the mean-field guide, ``q(sigma_p) = LogNormal(m_p, s_p)`` and
``q(eps_sp) = Normal(a_sp, b_sp)``; the map

    m_p -> m_p + u_p,   a_sp -> a_sp exp(-u_p),   b_sp -> b_sp exp(-u_p)

leaves the distribution of every ``sigma_p * eps_sp`` (and, with the same noise draws,
its value) exactly unchanged, hence the expected log-likelihood and the EDC potential.
The terms of the negative ELBO that change are, with ``S`` sites,
``A_p = sum_s (a_sp**2 + b_sp**2)`` and the ``LogNormal(mu, tau)`` prior of ``sigma``,

    f(u) = A_p exp(-2u) / 2 + S u + (m_p + u - mu)**2 / (2 tau**2)   (+ const),

which is convex; :func:`expansion_step` minimises it by Newton's method. Without the
prior term the optimum is ``exp(2u) = A_p / S``: the sites' mean ``E[eps**2]`` becomes 1.

The seasonal discrepancy (:mod:`.discrepancy`) has the same structure,
``delta = mu + tau_k * eta``, with a ``HalfNormal(s_k)`` prior on ``tau_k`` and
``N = sites x 12`` residuals ``eta`` per stream. With ``q(tau_k) = LogNormal(m_k, r_k)``
(``tau = exp(v)``, ``v ~ Normal(m_k, r_k)``), ``E[tau**2] = C_k exp(2u)`` where
``C_k = exp(2 m_k + 2 r_k**2)``, and the Jacobian of ``exp`` adds ``-u``:

    g(u) = A_k exp(-2u) / 2 + (N - 1) u + C_k exp(2u) / (2 s_k**2)   (+ const),

also convex; :func:`discrepancy_expansion_step` minimises it for every listed stream.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp

__all__ = [
    "discrepancy_expansion_step",
    "expansion_step",
    "optimal_halfnormal_log_scale",
    "optimal_log_scale",
]


def optimal_log_scale(
    a: jnp.ndarray, n_sites: int, m: jnp.ndarray, mu: float, tau: float, *, iterations: int = 20
) -> jnp.ndarray:
    """Minimise ``f(u) = a exp(-2u) / 2 + n u + (m + u - mu)**2 / (2 tau**2)`` per entry.

    Parameters
    ----------
    a : jax.Array
        ``(P,)`` sums over sites of ``E_q[eps**2]`` (> 0).
    n_sites : int
        Number of sites ``S`` in the sums.
    m : jax.Array
        ``(P,)`` location of ``log sigma`` under the guide.
    mu, tau : float
        Location and scale of the ``LogNormal`` prior of ``sigma`` (log units).
    iterations : int
        Newton steps (quadratic convergence; 20 is far more than needed).

    Returns
    -------
    jax.Array
        ``(P,)`` the minimising ``u`` (the log of the factor applied to ``sigma``).
    """
    a = jnp.maximum(jnp.asarray(a), 1e-30)
    u = 0.5 * jnp.log(a / n_sites)  # the optimum without the prior term
    for _ in range(iterations):
        grad = -a * jnp.exp(-2.0 * u) + n_sites + (m + u - mu) / tau**2
        hess = 2.0 * a * jnp.exp(-2.0 * u) + 1.0 / tau**2
        u = u - grad / hess
    return u


def expansion_step(
    params: Mapping[str, Any],
    *,
    sigma_prior_scale: float,
    sigma_prior_log_sd: float,
    prefix: str = "auto",
) -> dict[str, Any]:
    """One parameter-expansion step on the constrained params of an ``AutoNormal`` guide.

    Parameters
    ----------
    params : mapping
        Constrained guide params (``SVI.get_params``) with ``sigma_<prefix>_loc``
        ``(P,)`` (location of ``log sigma``), ``eps_<prefix>_loc`` and
        ``eps_<prefix>_scale`` ``(site, P)``.
    sigma_prior_scale, sigma_prior_log_sd : float
        The model's ``LogNormal(log(sigma_prior_scale), sigma_prior_log_sd)`` prior.
    prefix : str
        The guide's prefix (``AutoNormal`` default ``"auto"``).

    Returns
    -------
    dict
        The params with those three rescaled (see the module docstring); all others
        are the same objects.

    Raises
    ------
    KeyError
        If a needed param is missing (not an ``AutoNormal`` over ``sigma`` and ``eps``).
    """
    m = jnp.asarray(params[f"sigma_{prefix}_loc"])
    a_loc = jnp.asarray(params[f"eps_{prefix}_loc"])
    b_scale = jnp.asarray(params[f"eps_{prefix}_scale"])
    n_sites = a_loc.shape[0]
    a = jnp.sum(a_loc**2 + b_scale**2, axis=0)
    u = optimal_log_scale(a, n_sites, m, math.log(sigma_prior_scale), sigma_prior_log_sd)
    shrink = jnp.exp(-u)
    out = dict(params)
    out[f"sigma_{prefix}_loc"] = m + u
    out[f"eps_{prefix}_loc"] = a_loc * shrink
    out[f"eps_{prefix}_scale"] = b_scale * shrink
    return out


def optimal_halfnormal_log_scale(
    a: jnp.ndarray, n: int, c: jnp.ndarray, prior_scale: jnp.ndarray, *, iterations: int = 30
) -> jnp.ndarray:
    """Minimise ``g(u) = a exp(-2u) / 2 + (n - 1) u + c exp(2u) / (2 s**2)`` per entry.

    Parameters
    ----------
    a : jax.Array
        ``(K,)`` sums of ``E_q[eta**2]`` over the ``n`` residuals of each scale (> 0).
    n : int
        Number of residuals per scale (``sites x 12`` for the discrepancy).
    c : jax.Array
        ``(K,)`` ``E_q[tau**2]`` before the step (``exp(2 m + 2 r**2)``).
    prior_scale : jax.Array
        ``(K,)`` scale ``s`` of the ``HalfNormal`` prior of ``tau``.
    iterations : int
        Newton steps, each limited to a change of 1 in ``u``.

    Returns
    -------
    jax.Array
        ``(K,)`` the minimising ``u`` (the log of the factor applied to ``tau``).
    """
    a = jnp.maximum(jnp.asarray(a), 1e-30)
    c = jnp.asarray(c)
    s2 = jnp.asarray(prior_scale) ** 2
    u = 0.5 * jnp.log(a / max(n - 1, 1))  # the optimum without the prior term
    for _ in range(iterations):
        grad = -a * jnp.exp(-2.0 * u) + (n - 1) + c * jnp.exp(2.0 * u) / s2
        hess = 2.0 * a * jnp.exp(-2.0 * u) + 2.0 * c * jnp.exp(2.0 * u) / s2
        u = u - jnp.clip(grad / hess, -1.0, 1.0)
    return u


def discrepancy_expansion_step(
    params: Mapping[str, Any], *, prior_scales: Any, prefix: str = "auto"
) -> dict[str, Any]:
    """One parameter-expansion step of the discrepancy's ``(tau, eta)`` (``AutoNormal``).

    Parameters
    ----------
    params : mapping
        Constrained guide params with ``discrepancy_sd_<prefix>_loc`` and ``_scale``
        ``(K,)`` (the guide's ``log tau``) and ``discrepancy_eps_<prefix>_loc`` and
        ``_scale`` ``(site, K * 12)`` (stream-major, as in the model).
    prior_scales : array_like
        ``(K,)`` scales of the ``HalfNormal`` priors of ``tau``
        (:meth:`~.config.LikelihoodConfig.discrepancy_scales`).
    prefix : str
        The guide's prefix.

    Returns
    -------
    dict
        The params with ``tau``'s location and both ``eta`` arrays rescaled so that every
        ``tau * eta`` keeps its distribution; all others are the same objects.
    """
    m = jnp.asarray(params[f"discrepancy_sd_{prefix}_loc"])
    r = jnp.asarray(params[f"discrepancy_sd_{prefix}_scale"])
    a_loc = jnp.asarray(params[f"discrepancy_eps_{prefix}_loc"])
    b_scale = jnp.asarray(params[f"discrepancy_eps_{prefix}_scale"])
    k = m.shape[0]
    n_sites, width = a_loc.shape
    per = width // k
    a = jnp.sum((a_loc**2 + b_scale**2).reshape(n_sites, k, per), axis=(0, 2))
    u = optimal_halfnormal_log_scale(
        a, n_sites * per, jnp.exp(2.0 * m + 2.0 * r**2), jnp.asarray(prior_scales)
    )
    shrink = jnp.repeat(jnp.exp(-u), per)  # stream-major (K * 12,)
    out = dict(params)
    out[f"discrepancy_sd_{prefix}_loc"] = m + u
    out[f"discrepancy_eps_{prefix}_loc"] = a_loc * shrink
    out[f"discrepancy_eps_{prefix}_scale"] = b_scale * shrink
    return out
