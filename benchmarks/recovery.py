"""Recovery of a known environment -> parameter relationship on a synthetic world.

Builds a DALEC993 synthetic world (``differland_bayes.synthetic.synthesize``) in which
``--free`` parameters follow the default relationship of the environment plus a per-site
residual and every other parameter sits at its true value (the same at every site, and
fixed there in the fit); holds out ``--heldout`` of the sites; fits the hybrid model by
SVI (a MAP warm start with ``AutoDelta``, then a full-rank ``AutoMultivariateNormal``
started at the MAP point; ``--guide site_mvn`` for :func:`make_guide`'s block-diagonal
guide, a full covariance per site, which also works on minibatches of sites;
``--guide normal`` for mean field);
and prints a Markdown table of:

* *z coverage*: share of (training site, free parameter) pairs whose 90 % posterior
  interval of ``z`` contains the true ``z``;
* *r train / r held-out*: correlation, per free parameter, between the learned network
  mean ``f(x)`` and the true relationship mean (``true_z - true_z_residual``), at the
  training and at the held-out sites;
* *held-out coverage*: share of the held-out sites' observations inside the 90 %
  predictive interval of :func:`~differland_bayes.bayes.predict.predict_new_sites`.

The issue's criteria are z coverage >= 0.8, r >= 0.8 and held-out coverage in about
[0.8, 0.98]; ``tests/test_recovery.py`` asserts them on a smaller world.

Run from the repository root::

    .venv/bin/python benchmarks/recovery.py                    # 192 sites x 4 years
    .venv/bin/python benchmarks/recovery.py --sites 64 --years 3   # the test's world
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time
from dataclasses import dataclass

FREE = ("canopy_efficiency", "LCMA", "leaf_lifespan")
STREAMS = ("gpp", "nee", "et", "lai")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sites", type=int, default=192, help="sites in the world (default 192)")
    p.add_argument("--years", type=int, default=4, help="years of monthly steps (default 4)")
    p.add_argument("--seed", type=int, default=0, help="seed of the world (default 0)")
    p.add_argument("--fit-seed", type=int, default=1, help="seed of the fit (default 1)")
    p.add_argument(
        "--free", default=",".join(FREE), help=f"free parameters (default {','.join(FREE)})"
    )
    p.add_argument("--heldout", type=float, default=0.2, help="held-out share of the sites")
    p.add_argument(
        "--hidden",
        default="",
        help="hidden widths of the network, e.g. 16 or 32,32 (default: linear)",
    )
    p.add_argument("--map-steps", type=int, default=1000, help="AutoDelta (MAP) steps")
    p.add_argument("--map-lr", type=float, default=0.02, help="AutoDelta learning rate")
    p.add_argument("--svi-steps", type=int, default=3000, help="steps of the guide")
    p.add_argument("--svi-lr", type=float, default=0.01, help="learning rate of the guide")
    p.add_argument(
        "--guide",
        choices=("mvn", "site_mvn", "normal", "lowrank"),
        default="mvn",
        help="guide after the MAP: full-rank multivariate normal (default), make_guide's "
        "site_mvn (full covariance per site), AutoNormal, or make_guide's lowrank",
    )
    p.add_argument("--particles", type=int, default=4, help="ELBO particles of the guide")
    p.add_argument("--draws", type=int, default=300, help="posterior / predictive draws")
    p.add_argument("--platform", default="cpu", help="JAX platform (default cpu)")
    return p.parse_args(argv)


@dataclass
class Recovery:
    """Figures of one recovery run."""

    names: tuple[str, ...]
    z_coverage: float
    z_coverage_per_parameter: dict[str, float]
    z_zscore_rms: dict[str, float]
    z_posterior_sd: dict[str, float]
    r_train: dict[str, float]
    r_heldout: dict[str, float]
    heldout_coverage: float
    heldout_coverage_per_stream: dict[str, float]
    sigma: dict[str, float]
    true_residual_sd: dict[str, float]
    seconds: dict[str, float]
    pd_inside: dict[str, float] = dataclasses.field(default_factory=dict)
    pd_r: dict[str, float] = dataclasses.field(default_factory=dict)
    vp_inside: dict[str, float] = dataclasses.field(default_factory=dict)


def run(a: argparse.Namespace) -> Recovery:
    """Synthesize, fit, predict and score (see the module docstring)."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from numpyro.infer import init_to_value
    from numpyro.infer.autoguide import AutoMultivariateNormal

    from differland_bayes.bayes import (
        ModelConfig,
        NetworkConfig,
        ParameterLayout,
        hybrid_model,
        init_prior_net,
        initial_values,
        pack,
    )
    from differland_bayes.bayes.mcmc import network_from_params
    from differland_bayes.bayes.model import DETERMINISTIC_SITES, LOCAL_PLATES, LOCAL_SITES
    from differland_bayes.bayes.predict import (
        credible_interval,
        interval_coverage,
        posterior_predictive,
        predict_new_sites,
    )
    from differland_bayes.bayes.svi import fit_svi, make_guide, make_optimizer
    from differland_bayes.process import get_model
    from differland_bayes.synthetic import synthesize

    free = tuple(a.free.split(","))
    hidden = tuple(int(h) for h in a.hidden.split(",") if h)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    world = synthesize(
        a.sites, years=a.years, seed=a.seed, free_parameters=free, train_years=a.years
    )
    seconds["synthesize"] = time.perf_counter() - t0
    process = get_model("dalec993")
    base = world["true_parameters"].isel(site=0)
    fixed = {n: float(base.sel(parameter=n)) for n in process.table.names if n not in free}
    config = ModelConfig(network=NetworkConfig(hidden=hidden), fixed_parameters=fixed)
    names = ParameterLayout(process.table, config.fixed_parameters).free_names

    rng = np.random.default_rng(a.seed)
    n_out = max(1, round(a.heldout * a.sites))
    perm = rng.permutation(a.sites)
    train_idx, test_idx = np.sort(perm[n_out:]), np.sort(perm[:n_out])
    train, test = world.isel(site=train_idx), world.isel(site=test_idx)
    data, meta = pack(train, process, streams=list(STREAMS))
    net = init_prior_net(data.env.shape[1], process, config, key=jax.random.key(a.fit_seed))
    kw = {"process": process, "net": net, "config": config}
    keys = jax.random.split(jax.random.key(a.fit_seed), 4)

    # 1. MAP warm start (AutoDelta): network weights, sigma and every site's eps
    t0 = time.perf_counter()
    init = {**initial_values(net, config), "eps": jnp.zeros((data.env.shape[0], len(names)))}
    delta = make_guide(hybrid_model, "delta", init_loc_fn=init_to_value(values=init))
    map_fit = fit_svi(
        hybrid_model,
        delta,
        key=keys[0],
        num_steps=a.map_steps,
        optimizer=make_optimizer(a.map_lr, total_steps=a.map_steps),
        model_args=(data,),
        model_kwargs=kw,
        progress_bar=False,
    )
    seconds["map"] = time.perf_counter() - t0
    point = map_fit.guide.median(map_fit.params)

    # 2. the variational guide from the MAP point (network weights start at the MAP weights)
    t0 = time.perf_counter()
    net_map = network_from_params(net, map_fit.params)
    kw = {**kw, "net": net_map}
    start = {"sigma": point["sigma"], "eps": point["eps"]}
    if a.guide == "mvn":
        # full covariance: the free parameters of a site trade off against each other
        # (LAI = foliar carbon / LCMA, GPP ~ canopy efficiency x LAI), which a mean-field
        # guide cannot represent (its intervals come out too narrow)
        guide = AutoMultivariateNormal(
            hybrid_model, init_loc_fn=init_to_value(values=start), init_scale=0.05
        )
    else:
        guide = make_guide(
            hybrid_model,
            a.guide,
            local_sites=LOCAL_SITES,
            plate=LOCAL_PLATES,
            hidden_sites=DETERMINISTIC_SITES,
            init_scale=0.05 if a.guide == "site_mvn" else 0.1,
            init_loc_fn=init_to_value(values=start),
        )
    fit = fit_svi(
        hybrid_model,
        guide,
        key=keys[1],
        num_steps=a.svi_steps,
        optimizer=make_optimizer(a.svi_lr, total_steps=a.svi_steps),
        model_args=(data,),
        model_kwargs=kw,
        num_particles=a.particles,
        progress_bar=False,
    )
    seconds["svi"] = time.perf_counter() - t0

    # 3. posterior at the training sites, network at every site, held-out predictions
    t0 = time.perf_counter()
    pp = posterior_predictive(
        data, **kw, posterior=fit, key=keys[2], num_samples=a.draws, return_outputs=()
    )
    true_z = world["true_z"].sel(parameter=list(names)).values
    true_mean = true_z - world["true_z_residual"].sel(parameter=list(names)).values
    lo, hi = credible_interval(pp["z"], 0.9)
    inside = (lo <= true_z[train_idx]) & (true_z[train_idx] <= hi)
    z_sd = pp["z"].std(0)
    zscore = (pp["z"].mean(0) - true_z[train_idx]) / z_sd
    pred = predict_new_sites(
        test,
        meta,
        **kw,
        posterior=fit,
        key=keys[3],
        num_samples=a.draws,
        train_data=data,
        streams=STREAMS,
        return_outputs=(),
    )
    seconds["predict"] = time.perf_counter() - t0
    loc_train = pp["z_loc"].mean(0)
    loc_test = pred["z_loc"].mean(0)
    r = lambda x, y: float(np.corrcoef(x, y)[0, 1])  # noqa: E731
    per_stream, n_in, n_all = {}, 0, 0
    for s in STREAMS:
        obs = test[s].transpose("site", "time").values
        mask = np.isfinite(obs)
        per_stream[s] = interval_coverage(pred[f"obs_{s}"], np.where(mask, obs, 0.0), mask)
        n_in += per_stream[s] * mask.sum()
        n_all += mask.sum()
    rel_sd = dict(
        zip(
            world["relationship_residual_sd"]["varying_parameter"].values.astype(str),
            world["relationship_residual_sd"].values,
            strict=True,
        )
    )
    pd_inside, pd_r, vp_inside = _trait_recovery(world, train_idx, names, pp["parameters"])
    return Recovery(
        pd_inside=pd_inside,
        pd_r=pd_r,
        vp_inside=vp_inside,
        names=tuple(names),
        z_coverage=float(inside.mean()),
        z_coverage_per_parameter={n: float(inside[:, i].mean()) for i, n in enumerate(names)},
        z_zscore_rms={n: float(np.sqrt(np.mean(zscore[:, i] ** 2))) for i, n in enumerate(names)},
        z_posterior_sd={n: float(np.median(z_sd[:, i])) for i, n in enumerate(names)},
        r_train={n: r(loc_train[:, i], true_mean[train_idx, i]) for i, n in enumerate(names)},
        r_heldout={n: r(loc_test[:, i], true_mean[test_idx, i]) for i, n in enumerate(names)},
        heldout_coverage=float(n_in / n_all),
        heldout_coverage_per_stream=per_stream,
        sigma={n: float(v) for n, v in zip(names, pp["sigma"].mean(0), strict=True)},
        true_residual_sd={n: float(rel_sd[n]) for n in names},
        seconds=seconds,
    )


def _trait_recovery(world, train_idx, names, parameters):
    """Partial dependence and variance partitioning of the posterior against the truth.

    Returns, per free parameter: the fraction of (predictor, grid point) pairs whose true
    partial dependence (:func:`~differland_bayes.analysis.truth.true_partial_dependence`,
    predictors the relationship uses) lies inside the 90 % band of the learned one; the
    correlation of the learned and true curves; and the fraction of variance components
    (vegetation class, environment, shared, site residual) whose value for the *true*
    site parameters lies inside the posterior's 90 % interval.
    """
    import numpy as np
    import xarray as xr

    from differland_bayes.analysis.partial_dependence import partial_dependence
    from differland_bayes.analysis.truth import true_partial_dependence
    from differland_bayes.analysis.variance import variance_partition

    train = world.isel(site=train_idx)
    sites = [str(s) for s in train["site"].values]
    units = train["parameter_units"].sel(parameter=list(names)).values
    coords = {"site": sites, "parameter": list(names), "parameter_units": ("parameter", units)}
    theta = xr.DataArray(np.asarray(parameters), dims=("sample", "site", "parameter"),
                         coords=coords)  # fmt: skip
    true = train["true_parameters"].sel(parameter=list(names)).transpose("site", "parameter")
    true = xr.DataArray(np.repeat(true.values[None], 2, 0), dims=theta.dims, coords=coords)
    env = train["env"].transpose("site", "feature")
    veg = np.asarray(train["vegetation_class"].values).astype(str)
    pd_ = partial_dependence(theta, env, veg, grid_size=10)
    truth = true_partial_dependence(world, pd_, sites)
    pd_inside, pd_r = {}, {}
    for n in names:
        t = truth.sel(parameter=n).values
        lo = pd_["pd_lower"].sel(parameter=n).values
        hi = pd_["pd_upper"].sel(parameter=n).values
        mean = pd_["pd_mean"].sel(parameter=n).values
        ok = np.isfinite(t)
        pd_inside[n] = float(((lo[ok] <= t[ok]) & (t[ok] <= hi[ok])).mean())
        # curves as deviations from their own mean, so that the shape is compared
        dt_, dm = (
            (t - np.nanmean(t, -1, keepdims=True))[ok],
            (mean - mean.mean(-1, keepdims=True))[ok],
        )
        pd_r[n] = float(np.corrcoef(dt_, dm)[0, 1])
    vp = variance_partition(theta, env, veg)
    vp_true = variance_partition(true, env, veg, site_bootstrap=False)
    vp_inside = {}
    for n in names:
        t = vp_true["fraction_mean"].sel(parameter=n).values
        lo = vp["fraction_lower"].sel(parameter=n).values
        hi = vp["fraction_upper"].sel(parameter=n).values
        vp_inside[n] = float(((lo - 0.02 <= t) & (t <= hi + 0.02)).mean())
    return pd_inside, pd_r, vp_inside


def table(res: Recovery) -> str:
    """Markdown table of a :class:`Recovery`."""
    lines = [
        "| parameter | z coverage (90 %) | rms z-score | posterior sd (median) | r train "
        "| r held-out | sigma (fit) | residual sd (true) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n in res.names:
        lines.append(
            f"| {n} | {res.z_coverage_per_parameter[n]:.3f} | {res.z_zscore_rms[n]:.2f} | "
            f"{res.z_posterior_sd[n]:.3f} | {res.r_train[n]:.3f} | "
            f"{res.r_heldout[n]:.3f} | {res.sigma[n]:.3f} | {res.true_residual_sd[n]:.3f} |"
        )
    lines.append(
        f"| **all** | **{res.z_coverage:.3f}** | | | {min(res.r_train.values()):.3f} (min) | "
        f"{min(res.r_heldout.values()):.3f} (min) | | |"
    )
    lines += [
        "",
        "| held-out stream | 90 % predictive coverage |",
        "|---|---|",
        *(f"| {s} | {c:.3f} |" for s, c in res.heldout_coverage_per_stream.items()),
        f"| **all** | **{res.heldout_coverage:.3f}** |",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    """Run the benchmark and print its tables."""
    a = parse_args(argv)
    os.environ.setdefault("JAX_PLATFORMS", a.platform)
    t0 = time.perf_counter()
    res = run(a)
    total = time.perf_counter() - t0
    print(  # noqa: T201
        f"# Recovery: {a.sites} sites x {a.years} years (DALEC993, monthly), seed {a.seed}, "
        f"free {', '.join(res.names)}, held out {a.heldout:.0%}\n"
    )
    print(table(res))  # noqa: T201
    timing = ", ".join(f"{k} {v:.1f} s" for k, v in res.seconds.items())
    print(  # noqa: T201
        f"\nMAP {a.map_steps} steps (lr {a.map_lr}), guide {a.guide} {a.svi_steps} steps "
        f"(lr {a.svi_lr}, {a.particles} particle(s)), network hidden ({a.hidden}); "
        f"{timing}; total {total:.1f} s on {os.cpu_count()} CPU(s), "
        f"{platform.python_version()}, {platform.machine()}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
