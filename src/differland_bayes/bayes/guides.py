"""Autoguides for SVI fits that work with subsampled plates (:func:`make_guide`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

from numpyro.handlers import block
from numpyro.infer.autoguide import (
    AutoDelta,
    AutoGuide,
    AutoGuideList,
    AutoLowRankMultivariateNormal,
    AutoNormal,
)

__all__ = ["GUIDE_KINDS", "make_guide"]

GUIDE_KINDS = ("normal", "lowrank", "delta")  #: valid ``kind`` values of :func:`make_guide`


def make_guide(
    model: Callable[..., Any],
    kind: Literal["normal", "lowrank", "delta"] = "normal",
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
    kind : {"normal", "lowrank", "delta"}
        ``"normal"``: :class:`~numpyro.infer.autoguide.AutoNormal` (mean field, every
        latent). ``"delta"``: :class:`~numpyro.infer.autoguide.AutoDelta` (MAP).
        ``"lowrank"``: an :class:`~numpyro.infer.autoguide.AutoGuideList` of an
        :class:`~numpyro.infer.autoguide.AutoLowRankMultivariateNormal` over the global
        latents (the model with ``local_sites`` hidden) and an ``AutoNormal`` over the
        local sites (the model with only ``local_sites`` and ``plate`` exposed), the
        combination that supports subsampled plates (a plain low-rank guide raises
        "AutoContinuous guide does not support local latent variables").
    local_sites : str or sequence of str
        Names of the per-item latent sites inside the subsampled plate (``"lowrank"``
        only). Empty: a plain low-rank guide over every latent.
    plate : str or sequence of str or None
        Name(s) of the plate(s) the local sites live in (``"lowrank"`` only); they must be
        exposed to the local guide, else NumPyro raises ``KeyError``. A local site inside
        several plates (the hybrid model's ``eps`` is in ``site`` and ``parameter``)
        needs all of them.
    hidden_sites : sequence of str
        Further sites hidden from the low-rank part (``"lowrank"`` only), e.g. the
        deterministic sites of the hybrid model (``model.DETERMINISTIC_SITES``).
    rank : int, optional
        Rank of the low-rank covariance (NumPyro's default: about sqrt of the number of
        global latent dimensions).
    init_scale : float
        Initial posterior scale (``"normal"``/``"lowrank"``).
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
        For an unknown ``kind``.
    """
    if kind not in GUIDE_KINDS:
        raise ValueError(f"unknown guide kind {kind!r}; valid kinds: {', '.join(GUIDE_KINDS)}")
    loc_kw: dict[str, Any] = {} if init_loc_fn is None else {"init_loc_fn": init_loc_fn}
    if kind == "normal":
        return AutoNormal(model, init_scale=init_scale, **loc_kw)
    if kind == "delta":
        return AutoDelta(model, **loc_kw)

    local = [local_sites] if isinstance(local_sites, str) else list(local_sites)
    plates = [] if plate is None else [plate] if isinstance(plate, str) else list(plate)
    if not local:
        return AutoLowRankMultivariateNormal(model, rank=rank, init_scale=init_scale, **loc_kw)
    guide = AutoGuideList(model)
    guide.append(
        AutoLowRankMultivariateNormal(
            block(model, hide=[*local, *hidden_sites]), rank=rank, init_scale=init_scale, **loc_kw
        )
    )
    guide.append(
        AutoNormal(block(model, expose=[*local, *plates]), init_scale=init_scale, **loc_kw)
    )
    return guide
