"""Per-step carbon and water budgets of simulated trajectories."""

from __future__ import annotations

import numpy as np

POOLS993 = ("labile", "foliar", "root", "wood", "litter", "som", "water")
POOLS990 = ("labile", "foliar", "root", "wood", "litter", "som", "paw", "puw")


def _start_and_end(out, pools0, names):
    end = {n: np.asarray(getattr(out, f"next_{n}_pool")) for n in names}
    start = {}
    for n, p0 in zip(names, pools0, strict=True):
        p0 = np.asarray(p0)[..., None]
        start[n] = np.concatenate(
            [np.broadcast_to(p0, end[n][..., :1].shape), end[n][..., :-1]], -1
        )
    return start, end


def budgets(out, pools0, forcing, model_name):
    """Return {budget: (residual, scale)} arrays shaped like the outputs (site, time).

    residual = change of the store - (inflows - outflows) * dt; scale = the size of the
    terms involved, so residual / scale is a relative error.
    """
    names = POOLS993 if model_name == "dalec993" else POOLS990
    s, e = _start_and_end(out, pools0, names)
    g = lambda n: np.asarray(getattr(out, n))  # noqa: E731
    dt = np.asarray(forcing.delta_t)
    fire = model_name == "dalec993"
    z = np.zeros_like(g("gpp"))
    fc = {p: g(f"{p}_fire_combust") if fire else z for p in POOLS993[:6]}
    ft = {p: g(f"{p}_fire_transfer") if fire else z for p in POOLS993[:5]}
    flows = {
        "labile": g("labile_production") - g("labile_release") - fc["labile"] - ft["labile"],
        "foliar": g("leaf_production")
        + g("labile_release")
        - g("leaf_litter")
        - fc["foliar"]
        - ft["foliar"],
        "root": g("root_production") - g("root_litter") - fc["root"] - ft["root"],
        "wood": g("wood_production") - g("wood_litter") - fc["wood"] - ft["wood"],
        "litter": g("leaf_litter")
        + g("root_litter")
        + ft["labile"]
        + ft["foliar"]
        + ft["root"]
        - g("respiration_hetero_litter")
        - g("litter_to_som")
        - fc["litter"]
        - ft["litter"],
        "som": g("litter_to_som")
        + g("wood_litter")
        + (ft["wood"] if fire else 0)
        + (ft["litter"] if fire else 0)
        - g("respiration_hetero_som")
        - fc["som"],
    }
    precip = np.asarray(forcing.precip)
    if model_name == "dalec993":
        flows["water"] = precip - g("ET") - g("runoff")
    else:
        flows["paw"] = precip - g("ET") - g("q_paw") - g("paw2puw")
        flows["puw"] = g("paw2puw") - g("q_puw")
    out_b = {}
    for n, f in flows.items():
        resid = (e[n] - s[n]) - f * dt
        scale = np.abs(e[n]) + np.abs(s[n]) + 1.0
        out_b[n] = (resid, scale)
    carbon_pools = POOLS993[:6]
    total_s = sum(s[n] for n in carbon_pools)
    total_e = sum(e[n] for n in carbon_pools)
    resp = g("respiration_auto") + g("respiration_hetero_litter") + g("respiration_hetero_som")
    emitted = g("total_fire_combust") if fire else 0.0
    out_b["total_carbon"] = (
        (total_e - total_s) - (g("gpp") - resp - emitted) * dt,
        total_e + total_s + 1.0,
    )
    return out_b
