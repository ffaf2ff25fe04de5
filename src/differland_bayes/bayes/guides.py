"""Guides for SVI fits that work with subsampled plates (:func:`make_guide`).

Besides NumPyro's autoguides, :class:`AutoSiteMVN` gives every item of a (possibly
subsampled) plate its own full-covariance normal over that item's local latent vector
(a block-diagonal posterior over the local latents), which NumPyro's
``AutoMultivariateNormal`` cannot do under subsampling ("AutoContinuous guide does not
support local latent variables").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from jax.scipy.special import ndtri
from numpyro import handlers
from numpyro.distributions import constraints
from numpyro.distributions.util import periodic_repeat
from numpyro.infer.autoguide import (
    AutoDelta,
    AutoGuide,
    AutoGuideList,
    AutoLowRankMultivariateNormal,
    AutoNormal,
)
from numpyro.infer.initialization import init_to_uniform

__all__ = ["GUIDE_KINDS", "AutoSiteMVN", "make_guide"]

#: valid ``kind`` values of :func:`make_guide`
GUIDE_KINDS = ("normal", "lowrank", "delta", "site_mvn")


def _forward_trace(
    model: Callable[..., Any], init_loc_fn: Callable[..., Any], args: Any, kwargs: Any
) -> dict[str, Any]:
    """Trace ``model`` once with ``init_loc_fn`` substituted (inside a guide's seed).

    Unlike NumPyro's ``initialize_model`` it does not evaluate the model's gradient,
    which, run eagerly, is the costly part of setting up a guide of a long simulation.
    """
    seeded = handlers.seed(model, numpyro.prng_key())
    with handlers.block():
        return handlers.trace(handlers.substitute(seeded, substitute_fn=init_loc_fn)).get_trace(
            *args, **kwargs
        )


def _plate_sizes(trace: dict[str, Any]) -> dict[str, int]:
    return {n: int(s["args"][0]) for n, s in trace.items() if s["type"] == "plate"}


class _PartsGuideList(AutoGuideList):
    """An ``AutoGuideList`` whose parts create every plate they need themselves.

    Its own prototype is a forward trace (no gradient evaluation) and it creates no
    plates: the parts of :func:`make_guide`'s ``"site_mvn"`` guide create theirs (a second
    ``site`` plate would only draw subsample indices that nothing uses).
    """

    def _setup_prototype(self, *args: Any, **kwargs: Any) -> None:
        self.prototype_trace = _forward_trace(self.model, self.init_loc_fn, args, kwargs)
        self._prototype_frames = {}
        self._prototype_frame_full_sizes = _plate_sizes(self.prototype_trace)


class AutoSiteMVN(AutoGuide):
    """A full-covariance normal per plate item over that item's local latents.

    For every latent site of ``model`` (which should expose only the local sites and
    their plates, e.g. ``block(model, expose=["eps", "site", "parameter"])``) inside
    the plate ``plate``, item ``i`` of the plate gets
    ``MultivariateNormal(loc[i], scale_tril[i])`` over the flattened rest of the site's
    value (for the hybrid model's ``eps`` of shape ``(site, P)``: a ``P``-vector per
    site). Parameters (``<name>_<prefix>_loc`` of shape ``(n_items, d)`` and
    ``<name>_<prefix>_scale_tril`` of shape ``(n_items, d, d)``, lower triangular with a
    positive diagonal via :data:`numpyro.distributions.constraints.scaled_unit_lower_cholesky`)
    are held for every item and indexed by the plate's subsample indices, so the guide
    works with minibatches of items (the plate's subsample size is the model's, as
    traced once). Different local sites get independent blocks. The guide's trace
    holds the auxiliary site ``_<name>_<prefix>_latent`` (the multivariate normal) next
    to the model's site ``<name>``; names starting with ``_`` are not model latents.

    Parameters
    ----------
    model : callable
        The (blocked) NumPyro model.
    plate : str
        Name of the plate whose items get one block each (``dim`` of its value: the
        leading axis of each local site's value).
    prefix : str
        Prefix of the parameter names.
    init_loc_fn : callable
        NumPyro init strategy of the locations (one value per traced item; repeated
        periodically to every item when the model was traced on a minibatch).
    init_scale : float
        Initial posterior sd of every coordinate (``scale_tril = init_scale * I``).

    Raises
    ------
    ValueError
        On the first call, if a latent site is not inside ``plate``, its plate axis is not
        the leading axis of its value, or its support is not the real line.
    """

    scale_tril_constraint = constraints.scaled_unit_lower_cholesky

    def __init__(
        self,
        model: Callable[..., Any],
        *,
        plate: str = "site",
        prefix: str = "auto",
        init_loc_fn: Callable[..., Any] = init_to_uniform,
        init_scale: float = 0.1,
    ) -> None:
        if not init_scale > 0:
            raise ValueError(f"init_scale: expected a number > 0, found {init_scale!r}")
        self._plate = plate
        self._init_scale = float(init_scale)
        #: name -> shape of one item's value
        self._item_shapes: dict[str, tuple[int, ...]] = {}
        #: name -> event_dim of the model's site
        self._event_dims: dict[str, int] = {}
        self._size = 0
        self._subsample_size = 0
        super().__init__(model, prefix=prefix, init_loc_fn=init_loc_fn)

    def _setup_prototype(self, *args: Any, **kwargs: Any) -> None:
        # the local sites are real-valued, so their initial values need no transform
        self.prototype_trace = _forward_trace(self.model, self.init_loc_fn, args, kwargs)
        self._prototype_frame_full_sizes = _plate_sizes(self.prototype_trace)
        self._init_locs = {}
        if self._plate not in self._prototype_frame_full_sizes:
            raise ValueError(
                f"plate {self._plate!r}: expected it in the (exposed) model, found plates "
                f"{sorted(self._prototype_frame_full_sizes)}; expose it with block(expose=...)"
            )
        self._size = int(self._prototype_frame_full_sizes[self._plate])
        for name, site in self.prototype_trace.items():
            if site["type"] != "sample" or site["is_observed"]:
                continue
            frames = {f.name: f for f in site["cond_indep_stack"]}
            if self._plate not in frames:
                raise ValueError(
                    f"site {name!r}: expected a latent inside plate {self._plate!r}, found one "
                    f"in plates {sorted(frames)}; hide global sites from AutoSiteMVN"
                )
            frame = frames[self._plate]
            shape = jnp.shape(site["value"])
            axis = len(shape) - site["fn"].event_dim + frame.dim
            if axis != 0:
                raise ValueError(
                    f"site {name!r}: expected plate {self._plate!r} on the leading axis of its "
                    f"value, found it on axis {axis} of shape {shape}"
                )
            support = site["fn"].support
            if isinstance(support, constraints.independent):
                support = support.base_constraint
            if support is not constraints.real:
                raise ValueError(
                    f"site {name!r}: AutoSiteMVN needs a real-valued latent, found support "
                    f"{site['fn'].support}"
                )
            self._subsample_size = int(frame.size)
            self._item_shapes[name] = tuple(int(n) for n in shape[1:])
            self._event_dims[name] = int(site["fn"].event_dim)
            loc = jnp.reshape(site["value"], (shape[0], -1))
            if shape[0] != self._size:
                loc = periodic_repeat(loc, self._size, 0)
            self._init_locs[name] = loc

    def _reshape(self, z: jnp.ndarray, name: str) -> jnp.ndarray:
        """``(..., d)`` latent vectors -> ``(..., *item_shape)`` values of ``name``."""
        return jnp.reshape(z, (*jnp.shape(z)[:-1], *self._item_shapes[name]))

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, jnp.ndarray]:
        """Draw every local site for the plate's current (sub)sample of items.

        The multivariate normal is the auxiliary site ``_<name>_<prefix>_latent``
        (``(items, d)``, inside the plate, so its log density is scaled like the
        model's local terms); the model's site gets that value reshaped, through a
        :class:`~numpyro.distributions.Delta` with the model site's ``event_dim``
        (outside the plate: a second ``site`` plate would draw other indices).
        """
        if self.prototype_trace is None:
            self._setup_prototype(*args, **kwargs)
        latents = {}
        with numpyro.plate(self._plate, self._size, subsample_size=self._subsample_size, dim=-1):
            for name, init_loc in self._init_locs.items():
                d = init_loc.shape[-1]
                loc = numpyro.param(f"{name}_{self.prefix}_loc", init_loc, event_dim=1)
                scale_tril = numpyro.param(
                    f"{name}_{self.prefix}_scale_tril",
                    jnp.broadcast_to(self._init_scale * jnp.eye(d), (self._size, d, d)),
                    constraint=self.scale_tril_constraint,
                    event_dim=2,
                )
                latents[name] = numpyro.sample(
                    f"_{name}_{self.prefix}_latent",
                    dist.MultivariateNormal(loc, scale_tril=scale_tril),
                    infer={"is_auxiliary": True},
                )
        return {
            name: numpyro.sample(
                name, dist.Delta(self._reshape(z, name), event_dim=self._event_dims[name])
            )
            for name, z in latents.items()
        }

    def _params(self, params: dict[str, Any], name: str) -> tuple[jnp.ndarray, jnp.ndarray]:
        return params[f"{name}_{self.prefix}_loc"], params[f"{name}_{self.prefix}_scale_tril"]

    def sample_posterior(
        self,
        rng_key: jax.Array,
        params: dict[str, Any],
        *args: Any,
        sample_shape: tuple[int, ...] = (),
        **kwargs: Any,
    ) -> dict[str, jnp.ndarray]:
        """Draw the local sites of every item (not a minibatch) from the fitted guide."""
        out = {}
        for i, name in enumerate(self._init_locs):
            loc, tril = self._params(params, name)
            key = jax.random.fold_in(rng_key, i)
            z = dist.MultivariateNormal(loc, scale_tril=tril).sample(key, tuple(sample_shape))
            out[name] = self._reshape(z, name)
        return out

    def median(self, params: dict[str, Any]) -> dict[str, jnp.ndarray]:
        """Posterior medians (the locations) of the local sites, every item."""
        return {
            n: jnp.reshape(self._params(params, n)[0], (self._size, *s))
            for n, s in self._item_shapes.items()
        }

    def quantiles(self, params: dict[str, Any], quantiles: Sequence[float]) -> dict[str, Any]:
        """Marginal posterior quantiles ``(len(quantiles), n_items, *item_shape)``."""
        q = jnp.asarray(quantiles).reshape(-1, 1, 1)
        out = {}
        for name, shape in self._item_shapes.items():
            loc, tril = self._params(params, name)
            sd = jnp.sqrt(jnp.sum(tril**2, axis=-1))
            out[name] = jnp.reshape(loc + sd * ndtri(q), (-1, self._size, *shape))
        return out


def make_guide(
    model: Callable[..., Any],
    kind: Literal["normal", "lowrank", "delta", "site_mvn"] = "normal",
    *,
    local_sites: str | Sequence[str] = ("eps",),
    plate: str | Sequence[str] | None = "site",
    hidden_sites: Sequence[str] = (),
    rank: int | None = None,
    init_scale: float = 0.1,
    init_loc_fn: Callable[..., Any] | None = None,
) -> AutoGuide:
    """Build an autoguide that works with subsampled plates.

    Parameters
    ----------
    model : callable
        The NumPyro model.
    kind : {"normal", "lowrank", "delta", "site_mvn"}
        ``"normal"``: :class:`~numpyro.infer.autoguide.AutoNormal` (mean field, every
        latent). ``"delta"``: :class:`~numpyro.infer.autoguide.AutoDelta` (MAP).
        ``"lowrank"``: an :class:`~numpyro.infer.autoguide.AutoGuideList` of an
        :class:`~numpyro.infer.autoguide.AutoLowRankMultivariateNormal` over the global
        latents (the model with ``local_sites`` hidden) and an ``AutoNormal`` over the
        local sites (the model with only ``local_sites`` and ``plate`` exposed), the
        combination that supports subsampled plates (a plain low-rank guide raises
        "AutoContinuous guide does not support local latent variables").
        ``"site_mvn"``: an ``AutoGuideList`` of a global guide (``AutoNormal`` without
        ``rank``, a low-rank multivariate normal with it) and an :class:`AutoSiteMVN`
        over the local sites: a full covariance matrix per item of the first ``plate``
        (for the hybrid model: per site, over its ``P`` residuals ``eps``), the items
        independent of each other and of the globals.
    local_sites : str or sequence of str
        Names of the per-item latent sites inside the subsampled plate (``"lowrank"``,
        ``"site_mvn"``). Empty: a plain low-rank guide over every latent (``"lowrank"``;
        ``"site_mvn"`` needs local sites).
    plate : str or sequence of str or None
        Name(s) of the plate(s) the local sites live in (``"lowrank"``, ``"site_mvn"``);
        they must be exposed to the local guide, else NumPyro raises ``KeyError``. A
        local site inside several plates (the hybrid model's ``eps`` is in ``site`` and
        ``parameter``) needs all of them; for ``"site_mvn"`` the first is the plate whose
        items get one block each.
    hidden_sites : sequence of str
        Further sites hidden from the global part (``"lowrank"``, ``"site_mvn"``), e.g.
        the deterministic sites of the hybrid model (``model.DETERMINISTIC_SITES``).
    rank : int, optional
        Rank of the low-rank covariance (``"lowrank"``: default about the square root of
        the number of global latent dimensions; ``"site_mvn"``: without it the globals
        are mean field).
    init_scale : float
        Initial posterior scale (not ``"delta"``).
    init_loc_fn : callable, optional
        A NumPyro init strategy (e.g. :func:`numpyro.infer.init_to_median`) for the
        initial locations; default the autoguide's own.

    Returns
    -------
    numpyro.infer.autoguide.AutoGuide
        The guide.

    Raises
    ------
    ValueError
        For an unknown ``kind``, a ``rank`` below 1, or ``"site_mvn"`` without local
        sites or a plate.
    """
    if kind not in GUIDE_KINDS:
        raise ValueError(f"unknown guide kind {kind!r}; valid kinds: {', '.join(GUIDE_KINDS)}")
    if rank is not None and rank < 1:
        raise ValueError(f"rank: expected an integer >= 1 or None, found {rank!r}")
    loc_kw: dict[str, Any] = {} if init_loc_fn is None else {"init_loc_fn": init_loc_fn}
    if kind == "normal":
        return AutoNormal(model, init_scale=init_scale, **loc_kw)
    if kind == "delta":
        return AutoDelta(model, **loc_kw)

    local = [local_sites] if isinstance(local_sites, str) else list(local_sites)
    plates = [] if plate is None else [plate] if isinstance(plate, str) else list(plate)
    if kind == "site_mvn" and not (local and plates):
        raise ValueError(
            "site_mvn: expected local_sites and plate (e.g. local_sites=('eps',), "
            f"plate=('site', 'parameter')), found local_sites={local} and plate={plates}"
        )
    if not local:
        return AutoLowRankMultivariateNormal(model, rank=rank, init_scale=init_scale, **loc_kw)
    guide = _PartsGuideList(model) if kind == "site_mvn" else AutoGuideList(model)
    global_model = handlers.block(model, hide=[*local, *hidden_sites])
    if kind == "lowrank" or rank is not None:
        guide.append(
            AutoLowRankMultivariateNormal(global_model, rank=rank, init_scale=init_scale, **loc_kw)
        )
    else:
        guide.append(AutoNormal(global_model, init_scale=init_scale, **loc_kw))
    local_model = handlers.block(model, expose=[*local, *plates])
    if kind == "site_mvn":
        guide.append(AutoSiteMVN(local_model, plate=plates[0], init_scale=init_scale, **loc_kw))
    else:
        guide.append(AutoNormal(local_model, init_scale=init_scale, **loc_kw))
    return guide
