"""The fitted prior network as a plain function of the environment, per weight draw.

The network-based trait–environment analyses (:func:`.partial_dependence_network`,
:func:`.permutation_importance_network`, prior draws for :func:`.contraction`) need only
a callable ``prior_mean(x_std, draw) -> (n, n_parameters)``: the prior location of the
site parameters at standardised environments ``x_std`` ``(n, n_features)`` under weight
draw ``draw``. :func:`network_prior_mean` builds one from a restored run
(:func:`~differland_bayes.bayes.fit_restore.restore_fit`):

* point-estimated weights: one network, the same function for every ``draw``;
* Bayesian weights: one network per draw of the guide's weights.

Units: ``"physical"`` (default) returns ``to_physical(z_loc)``, the physical value at the
prior location, which is the prior median of ``theta_s`` given ``x_s`` (the bounded
transform is monotone); ``"unconstrained"`` returns ``z_loc`` itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from ..bayes.model import LOCAL_SITES, NET_NAME, ParameterLayout
from ..bayes.prior_net import EnvPriorNet
from ..params import ParamTable
from ._trait_base import CLASS_PREFIX, env_array

__all__ = ["NetworkPriorMean", "network_inputs", "network_prior_draws", "network_prior_mean"]

log = logging.getLogger(__name__)

UNITS = ("physical", "unconstrained")

PriorMean = Callable[[np.ndarray, int], np.ndarray]


@eqx.filter_jit
def _evaluate(net: EnvPriorNet, x: jnp.ndarray) -> Any:
    return jax.vmap(net)(x)


class NetworkPriorMean:
    """Prior location of the site parameters from the fitted network, per weight draw.

    Call as ``prior_mean(x_std, draw)`` with standardised environments ``x_std``
    ``(n, n_features)`` (columns :attr:`features`) and ``draw`` in
    ``range(num_draws)``; returns ``(n, n_parameters)`` in :attr:`units`.

    Parameters
    ----------
    nets : sequence of EnvPriorNet
        One network per weight draw (one for point-estimated weights).
    table : ParamTable
        The predicted (free) parameters, in network output order.
    features : sequence of str
        Network input columns (continuous predictors, then ``vegetation_class=<c>``).
    env_mean, env_sd : array_like
        Standardisation of the inputs (``(x - mean) / sd``; sd 0 counts as 1).
    units : {"physical", "unconstrained"}
        Units of the returned values.
    sigma : array_like, optional
        ``(draw, n_parameters)`` posterior draws of the residual sd of ``z`` (floor
        included), for :meth:`prior_draws`.
    """

    def __init__(
        self,
        nets: Sequence[EnvPriorNet],
        *,
        table: ParamTable,
        features: Sequence[str],
        env_mean: Any,
        env_sd: Any,
        units: str = "physical",
        sigma: Any = None,
    ) -> None:
        if units not in UNITS:
            raise ValueError(f"units: expected one of {UNITS}, found {units!r}")
        if not nets:
            raise ValueError("nets: expected at least one network, found none")
        self.nets = tuple(nets)
        self.table = table
        self.features = tuple(str(f) for f in features)
        self.env_mean = np.asarray(env_mean, dtype=np.float64)
        sd = np.asarray(env_sd, dtype=np.float64)
        self.env_sd = np.where(sd > 0, sd, 1.0)
        self.units = units
        self.sigma = None if sigma is None else np.asarray(sigma, dtype=np.float64)
        if self.env_mean.shape != (len(self.features),) or self.env_sd.shape != (
            len(self.features),
        ):
            raise ValueError(
                f"env_mean, env_sd: expected shape ({len(self.features)},), found "
                f"{self.env_mean.shape} and {self.env_sd.shape}"
            )

    @property
    def parameters(self) -> tuple[str, ...]:
        """Names of the predicted parameters."""
        return self.table.names

    @property
    def parameter_units(self) -> tuple[str, ...]:
        """Units of the returned values, per parameter."""
        if self.units == "unconstrained":
            return ("1",) * len(self.table)
        return self.table.units

    @property
    def num_draws(self) -> int:
        """Number of weight draws (1 for point-estimated weights)."""
        return len(self.nets)

    def _outputs(self, x_std: Any, draw: int) -> Any:
        x = np.asarray(x_std, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.features):
            raise ValueError(f"x_std: expected shape (n, {len(self.features)}), found {x.shape}")
        if not 0 <= int(draw) < self.num_draws:
            raise ValueError(f"draw: expected 0 <= draw < {self.num_draws}, found {draw}")
        return _evaluate(self.nets[int(draw)], jnp.asarray(x, dtype=jnp.float32))

    def __call__(self, x_std: Any, draw: int) -> np.ndarray:
        """Prior location ``(n, n_parameters)`` at ``x_std`` under weight draw ``draw``."""
        loc = self._outputs(x_std, draw).loc
        out = self.table.to_physical(loc) if self.units == "physical" else loc
        return np.asarray(out, dtype=np.float64)

    def standardise(self, x_raw: Any) -> np.ndarray:
        """Standardise raw network inputs ``(n, n_features)``."""
        return (np.asarray(x_raw, dtype=np.float64) - self.env_mean) / self.env_sd

    def encode(self, env: xr.DataArray, vegetation_class: Any = None) -> np.ndarray:
        """Raw network inputs ``(site, n_features)`` from an environment and classes.

        Parameters
        ----------
        env : xarray.DataArray
            ``(site, feature)`` raw predictors (the canonical ``env``, with or without
            the one-hot class columns).
        vegetation_class : array_like, optional
            ``(site,)`` labels; needed unless ``env`` holds the one-hot columns.
        """
        x, _, _, _ = network_inputs(self, env, vegetation_class)
        return x

    def prior_draws(self, x_std: Any, num_samples: int, seed: int = 0) -> np.ndarray:
        """Draws of the site parameters' prior ``z = loc + sd * eps`` given the network.

        For sample ``i`` the weight draw ``i % num_draws`` and the residual sd draw
        ``i % len(sigma)`` are used (times the scale head's multiplier, if any), with a
        fresh ``eps ~ N(0, 1)``. This is the population prior of a site given the fitted
        hyperparameters (the reference of :func:`.contraction`).

        Returns
        -------
        numpy.ndarray
            ``(sample, n, n_parameters)`` in :attr:`units`.
        """
        if self.sigma is None:
            raise ValueError("sigma: no residual sd draws; build with network_prior_mean")
        rng = np.random.default_rng(seed)
        out = []
        for i in range(int(num_samples)):
            o = self._outputs(x_std, i % self.num_draws)
            loc = np.asarray(o.loc, dtype=np.float64)
            mult = 1.0 if o.scale is None else np.asarray(o.scale, dtype=np.float64)
            z = loc + self.sigma[i % len(self.sigma)] * mult * rng.standard_normal(loc.shape)
            out.append(np.asarray(self.table.to_physical(z)) if self.units == "physical" else z)
        return np.stack(out).astype(np.float64)


def network_inputs(
    prior_mean: Any,
    env: Any,
    vegetation_class: Any = None,
    *,
    env_mean: Any = None,
    env_sd: Any = None,
) -> tuple[np.ndarray, tuple[str, ...], np.ndarray, np.ndarray]:
    """Raw network inputs, their names and standardisation for any ``prior_mean``.

    A :class:`NetworkPriorMean` encodes ``env`` (and ``vegetation_class``) into its own
    input columns and standardisation. For a plain callable, ``env``'s columns are the
    inputs as they are, standardised with ``env_mean`` / ``env_sd`` (default 0 and 1:
    ``env`` is already standardised).

    Returns
    -------
    tuple
        ``(x_raw (site, n_features), features, mean, sd)``.
    """
    env = env_array(env)
    names = [str(f) for f in env["feature"].values]
    values = np.asarray(env.values, dtype=np.float64)
    if not isinstance(prior_mean, NetworkPriorMean):
        n_f = len(names)
        mean = np.zeros(n_f) if env_mean is None else np.asarray(env_mean, dtype=np.float64)
        sd = np.ones(n_f) if env_sd is None else np.asarray(env_sd, dtype=np.float64)
        if mean.shape != (n_f,) or sd.shape != (n_f,):
            raise ValueError(
                f"env_mean, env_sd: expected shape ({n_f},), found {mean.shape} and {sd.shape}"
            )
        return values, tuple(names), mean, np.where(sd > 0, sd, 1.0)
    labels = None
    if vegetation_class is not None:
        labels = np.asarray(getattr(vegetation_class, "values", vegetation_class)).astype(str)
        if labels.shape != (values.shape[0],):
            raise ValueError(
                f"vegetation_class: expected shape ({values.shape[0]},), found {labels.shape}"
            )
    cols, missing = [], []
    for f in prior_mean.features:
        if f in names:
            cols.append(values[:, names.index(f)])
        elif f.startswith(CLASS_PREFIX) and labels is not None:
            cols.append((labels == f[len(CLASS_PREFIX) :]).astype(float))
        else:
            missing.append(f)
    if missing:
        raise ValueError(
            f"env: the network needs predictors {missing} (found {names}; class columns come "
            "from vegetation_class)"
        )
    return np.stack(cols, axis=1), prior_mean.features, prior_mean.env_mean, prior_mean.env_sd


# --------------------------------------------------------------------------- restore


def _leaf_names(net: EnvPriorNet) -> tuple[list[str], Any]:
    arrays = eqx.filter(net, eqx.is_inexact_array)
    paths = [jax.tree_util.keystr(p)[1:] for p, _ in jax.tree_util.tree_leaves_with_path(arrays)]
    return paths, jax.tree.structure(arrays)


def _with_leaves(net: EnvPriorNet, leaves: list[np.ndarray]) -> EnvPriorNet:
    _, treedef = _leaf_names(net)
    arrays = jax.tree.unflatten(treedef, [jnp.asarray(a, dtype=jnp.float32) for a in leaves])
    return eqx.combine(arrays, net)


def _mean_field(fit: Any, names: list[str]) -> str | None:
    """How the guide holds these global sites: ``normal``, ``delta`` or None (traced).

    A mean-field part (``AutoNormal``, also the global part of a ``site_mvn`` guide)
    stores ``<site>_auto_loc`` and ``<site>_auto_scale``; ``AutoDelta`` the loc alone.
    """
    if all(f"{n}_auto_loc" in fit.params and f"{n}_auto_scale" in fit.params for n in names):
        return "normal"
    if fit.config.svi.guide == "delta" and all(f"{n}_auto_loc" in fit.params for n in names):
        return "delta"
    return None


def _guide_draws(
    fit: Any, names: list[str], kind: str, n: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Draws of global sites straight from a mean-field or delta guide's parameters."""
    out = {}
    for name in names:
        loc = np.asarray(fit.params[f"{name}_auto_loc"], dtype=np.float64)
        if kind == "delta":  # AutoDelta stores the constrained value
            out[name] = np.broadcast_to(loc, (n, *loc.shape))
            continue
        scale = np.asarray(fit.params[f"{name}_auto_scale"], dtype=np.float64)
        raw = loc + scale * rng.standard_normal((n, *loc.shape))
        out[name] = np.exp(raw) if name == "sigma" else raw  # sigma: positive support
    return out


def _traced_draws(fit: Any, ds: xr.Dataset, n: int, seed: int) -> dict:
    """Draws of the global sites by running the run's guide (any guide kind)."""
    from ..bayes.predict import posterior_draws
    from ..bayes.predict_dataset import _guide_data, _guide_posterior

    draws, _ = posterior_draws(
        _guide_posterior(fit),
        data=_guide_data(ds, fit),
        process=fit.process,
        net=fit.net,
        config=fit.model_config,
        key=jax.random.key(seed),
        num_samples=n,
    )
    return {k: np.asarray(v, dtype=np.float64) for k, v in draws.items() if k not in LOCAL_SITES}


def network_prior_mean(
    restored_fit: Any,
    num_draws: int = 100,
    seed: int = 0,
    *,
    units: str = "physical",
    ds: xr.Dataset | None = None,
) -> NetworkPriorMean:
    """Build the ``prior_mean`` callable of a restored run.

    Parameters
    ----------
    restored_fit : RestoredFit
        A run read with :func:`~differland_bayes.bayes.fit_restore.restore_fit`.
    num_draws : int
        Posterior draws of the weights (Bayesian weights) and of the residual sd.
    seed : int
        Seed of those draws.
    units : {"physical", "unconstrained"}
        Units of the callable's values (see the module docstring).
    ds : xarray.Dataset, optional
        A canonical dataset with the run's predictors; with it the guide itself draws
        (any guide kind). Without it the global sites are drawn from the stored
        parameters of a mean-field part (``normal``; the global part of ``site_mvn``) or
        a ``delta`` guide; a low-rank guide needs ``ds``.

    Returns
    -------
    NetworkPriorMean
        The callable; ``num_draws`` networks with Bayesian weights (one for a ``delta``
        guide), else one; ``sigma`` holds ``num_draws`` residual sd draws (+ floor).
    """
    if num_draws < 1:
        raise ValueError(f"num_draws: expected an integer >= 1, found {num_draws}")
    fit = restored_fit
    mc = fit.model_config
    layout = ParameterLayout.for_config(fit.process.table, mc)
    bayesian = mc.network.bayesian_weights
    paths, _ = _leaf_names(fit.net)
    sites = [f"{NET_NAME}/{p}" for p in paths] if bayesian else []
    kind = _mean_field(fit, ["sigma", *sites])
    if ds is not None:
        draws = _traced_draws(fit, ds, num_draws, seed)
    elif kind is not None:
        draws = _guide_draws(fit, ["sigma", *sites], kind, num_draws, np.random.default_rng(seed))
    else:
        raise ValueError(
            f"ds: the {fit.config.svi.guide!r} guide's global draws need tracing the model; "
            "pass the run's dataset (ds=...), found None"
        )
    if bayesian:
        n_nets = 1 if kind == "delta" and ds is None else num_draws
        nets = [_with_leaves(fit.net, [draws[s][i] for s in sites]) for i in range(n_nets)]
    else:
        nets = [fit.net]
    meta = fit.meta
    log.info(
        "prior network of %s: %d weight draw(s), %d sigma draw(s)",
        fit.run_dir, len(nets), num_draws,
    )  # fmt: skip
    return NetworkPriorMean(
        nets,
        table=layout.free_table,
        features=meta["features"],
        env_mean=meta["env_mean"],
        env_sd=meta["env_sd"],
        units=units,
        sigma=np.asarray(draws["sigma"]) + mc.sigma_floor,
    )


def network_prior_draws(
    prior_mean: NetworkPriorMean,
    env: Any,
    vegetation_class: Any = None,
    *,
    num_samples: int = 200,
    seed: int = 0,
) -> xr.DataArray:
    """Prior draws of the site parameters given the fitted network and ``sigma``.

    The reference prior of :func:`~.equifinality.contraction`: for each site of ``env``,
    ``z = f(x) + sd * eps`` (see :meth:`NetworkPriorMean.prior_draws`).

    Parameters
    ----------
    prior_mean : NetworkPriorMean
        From :func:`network_prior_mean` (with ``sigma``).
    env : xarray.DataArray
        ``(site, feature)`` raw predictors of the sites.
    vegetation_class : array_like, optional
        ``(site,)`` labels (unless ``env`` holds the one-hot columns).
    num_samples : int
        Number of draws.
    seed : int
        Seed of ``eps``.

    Returns
    -------
    xarray.DataArray
        ``(sample, site, parameter)`` in ``prior_mean.units`` (``parameter_units``
        coordinate).
    """
    if not isinstance(prior_mean, NetworkPriorMean):
        raise TypeError(
            f"prior_mean: expected a NetworkPriorMean, found {type(prior_mean).__name__}"
        )
    x = prior_mean.standardise(prior_mean.encode(env, vegetation_class))
    arr = prior_mean.prior_draws(x, num_samples, seed)
    coords: dict[str, Any] = {
        "parameter": list(prior_mean.parameters),
        "parameter_units": ("parameter", list(prior_mean.parameter_units)),
    }
    if isinstance(env, xr.DataArray) and "site" in env.coords:
        coords["site"] = env["site"].values
    return xr.DataArray(
        arr,
        dims=("sample", "site", "parameter"),
        coords=coords,
        attrs={"description": "prior draws given the fitted network and sigma"},
    )
