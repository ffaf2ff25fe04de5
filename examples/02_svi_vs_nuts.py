"""Fit one synthetic site with NUTS and with SVI and compare the two posteriors.

Shows: the hybrid model (:func:`~differland_bayes.bayes.model.hybrid_model`) on one site
of a synthetic world with a known truth, sampled with NUTS
(:func:`~differland_bayes.bayes.mcmc.fit_nuts`, the reference) and approximated with
mean-field SVI (:func:`~differland_bayes.bayes.svi.fit_svi`, what ``differland fit``
uses at scale). The prior network is held at its initial weights in both
(:func:`~differland_bayes.bayes.mcmc.condition_on_network`), so both infer the same
thing: the site's parameters (and ``sigma``) given its training years of GPP, NEE, ET and
LAI. Parameters not estimated are held at the truth.

Prints, per estimated parameter, the truth, the posterior mean and sd of NUTS and SVI
(physical units), ``|mean_SVI - mean_NUTS| / sd_NUTS``, the sd ratio SVI / NUTS and the
contraction ``1 - var_post / var_prior`` (a parameter counts as well identified when
its NUTS posterior sd is below half its prior sd), then the wall times and their ratio.
Writes to ``--out``: ``svi_vs_nuts.csv`` (the table), ``timing.csv`` and
``posteriors.png`` (NUTS and SVI marginals against the truth).

Runs in about 35 s on a 2-core laptop with the default settings (six parameters, a
site with two training years, 4000 SVI steps, two NUTS chains of 500 + 1000 draws;
both timings include compilation); ``--quick`` (three parameters, one training year,
300 SVI steps, 100 + 100 NUTS draws; about 20 s) checks that everything runs. Result
with the default settings: canopy efficiency, LCMA and leaf lifespan are well
identified, and there SVI's posterior means lie within 0.3 NUTS posterior sd of NUTS's
(sd ratios SVI / NUTS 0.8-1.2); the three weakly identified parameters (allocation to
foliage, wood turnover, Q10) agree too, within 0.12 sd. NUTS takes about 3 times as
long as SVI on this one site; NUTS does not scale to the hundreds of sites that SVI
fits in minibatches.

Usage::

    python examples/02_svi_vs_nuts.py --out runs/svi-vs-nuts
    python examples/02_svi_vs_nuts.py --out /tmp/svi-nuts --quick
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

log = logging.getLogger("example")

#: estimated parameters (those of examples/configs/synthetic.toml); --quick: the first three
FREE = ("canopy_efficiency", "LCMA", "leaf_lifespan", "f_fol", "tor_wood", "Q10")
STREAMS = ("gpp", "nee", "et", "lai")
OUTPUTS = ("svi_vs_nuts.csv", "timing.csv", "posteriors.png")
#: NUTS posterior sd / prior sd below this: well identified
IDENTIFIED_SD_RATIO = 0.5


def main(argv: list[str] | None = None) -> int:
    """Run the example; returns 0 on success."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--seed", type=int, default=0, help="seed of the world and the fits")
    p.add_argument("--years", type=int, default=4, help="years simulated (half are fitted)")
    p.add_argument("--svi-steps", type=int, default=4000, help="SVI steps")
    p.add_argument("--warmup", type=int, default=500, help="NUTS warm-up draws per chain")
    p.add_argument("--samples", type=int, default=1000, help="NUTS draws per chain")
    p.add_argument("--chains", type=int, default=2, help="NUTS chains (run one after another)")
    p.add_argument("--quick", action="store_true", help="tiny settings (about 20 s)")
    p.add_argument("--overwrite", action="store_true", help="replace earlier results")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    free = FREE
    if args.quick:
        free = FREE[:3]
        args.years, args.svi_steps, args.warmup, args.samples, args.chains = 2, 300, 100, 100, 1

    out = Path(args.out)
    existing = [out / n for n in OUTPUTS if (out / n).exists()]
    if existing and not args.overwrite:
        raise SystemExit(f"{existing[0]} exists; use --overwrite to replace it")
    out.mkdir(parents=True, exist_ok=True)

    from numpyro.infer import Predictive, init_to_value
    from numpyro.infer.util import log_density

    from differland_bayes.bayes import (
        ModelConfig,
        NetworkConfig,
        ParameterLayout,
        init_prior_net,
        initial_values,
        pack,
    )
    from differland_bayes.bayes.mcmc import condition_on_network, fit_nuts
    from differland_bayes.bayes.predict import posterior_predictive
    from differland_bayes.bayes.svi import fit_svi, make_guide, make_optimizer
    from differland_bayes.process import get_model
    from differland_bayes.synthetic import synthesize

    # 1. one site of a synthetic world; every parameter but `free` held at its truth
    world = synthesize(4, years=args.years, seed=args.seed, free_parameters=list(free))
    world = world.isel(site=[0])
    process = get_model("dalec993")
    truth = world["true_parameters"].isel(site=0)
    fixed = {n: float(truth.sel(parameter=n)) for n in process.table.names if n not in free}
    config = ModelConfig(network=NetworkConfig(hidden=(8,)), fixed_parameters=fixed)
    data, _ = pack(world, process, streams=list(STREAMS), split=1)
    net = init_prior_net(data.env.shape[1], process, config, key=jax.random.key(args.seed))
    kw = {"process": process, "net": net, "config": config}
    layout = ParameterLayout(process.table, fixed)
    names = layout.free_names
    n_obs = {s: int(v.mask.sum()) for s, v in data.streams.items()}
    log.info(
        "site %s (%s): %d free parameters %s; observations %s",
        str(world.site.values[0]),
        str(world.vegetation_class.values[0]),
        len(names),
        list(names),
        n_obs,
    )

    # the network is held at its initial weights: both methods infer sigma and eps only
    model = condition_on_network(net)
    init = {**initial_values(net, config), "eps": jnp.zeros((1, len(names)))}
    # trace the simulator and its gradient once, outside both timings
    grad = jax.grad(lambda eps: log_density(model, (data,), kw, {**init, "eps": eps})[0])
    jax.block_until_ready(grad(init["eps"]))

    # 2. SVI (mean-field normal guide)
    guide = make_guide(model, "normal", init_loc_fn=init_to_value(values=init))
    t0 = time.perf_counter()
    svi = fit_svi(
        model,
        guide,
        key=jax.random.key(args.seed + 2),
        num_steps=args.svi_steps,
        optimizer=make_optimizer(0.02, total_steps=args.svi_steps),
        model_args=(data,),
        model_kwargs=kw,
        progress_bar=False,
    )
    t_svi = time.perf_counter() - t0
    n_draws = args.samples * args.chains
    svi_draws = posterior_predictive(
        data, **kw, posterior=svi, key=jax.random.key(5), num_samples=n_draws, return_outputs=()
    )

    # 3. NUTS (the reference)
    t0 = time.perf_counter()
    nuts = fit_nuts(
        data,
        **kw,
        key=jax.random.key(args.seed + 1),
        num_warmup=args.warmup,
        num_samples=args.samples,
        num_chains=args.chains,
        target_accept=0.9,
    )
    t_nuts = time.perf_counter() - t0
    d = nuts.diagnostics
    log.info(
        "NUTS: %d draws, %d divergences, max R-hat %.3f, min ESS %.0f",
        d.num_samples,
        d.divergences,
        d.max_r_hat,
        d.min_ess,
    )

    # 4. prior of the site parameters given the network (for the contraction)
    prior = Predictive(model, num_samples=2000)(jax.random.key(7), data, **kw)
    to_phys = layout.free_table.to_physical
    post = {
        "nuts": np.asarray(to_phys(nuts.samples["z"][:, 0])),
        "svi": np.asarray(svi_draws["parameters"][:, 0]),
        "prior": np.asarray(to_phys(np.asarray(prior["z"])[:, 0])),
    }
    z_nuts, z_svi = np.asarray(nuts.samples["z"][:, 0]), np.asarray(svi_draws["z"][:, 0])
    z_prior = np.asarray(prior["z"])[:, 0]

    rows = []
    for i, n in enumerate(names):
        sd_nuts = z_nuts[:, i].std()
        rows.append(
            {
                "parameter": n,
                "units": process.table[n].units,
                "truth": float(truth.sel(parameter=n)),
                "nuts_mean": post["nuts"][:, i].mean(),
                "nuts_sd": post["nuts"][:, i].std(),
                "svi_mean": post["svi"][:, i].mean(),
                "svi_sd": post["svi"][:, i].std(),
                "gap_in_nuts_sd": abs(z_svi[:, i].mean() - z_nuts[:, i].mean()) / sd_nuts,
                "sd_ratio_svi_nuts": z_svi[:, i].std() / sd_nuts,
                "contraction": 1.0 - sd_nuts**2 / z_prior[:, i].var(),
                "identified": bool(sd_nuts < IDENTIFIED_SD_RATIO * z_prior[:, i].std()),
                "r_hat": float(np.ravel(d.r_hat["z"])[i]),
            }
        )
    table = pd.DataFrame(rows)
    timing = pd.DataFrame(
        [
            {"method": "svi", "steps_or_draws": args.svi_steps, "seconds": t_svi},
            {
                "method": "nuts",
                "steps_or_draws": args.warmup * args.chains + n_draws,
                "seconds": t_nuts,
            },
        ]
    )
    table.to_csv(out / "svi_vs_nuts.csv", index=False, float_format="%.5g")
    timing.to_csv(out / "timing.csv", index=False, float_format="%.3f")
    _figure(names, post, table, out / "posteriors.png")

    with pd.option_context("display.width", 140, "display.float_format", "{:.4g}".format):
        print(table.drop(columns=["units", "r_hat"]).to_string(index=False))
    ok = table[table.identified]
    print(
        f"well identified: {', '.join(ok.parameter) or 'none'}; max |diff|/sd there "
        f"{ok.gap_in_nuts_sd.max() if len(ok) else float('nan'):.2f}\n"
        f"wall time: SVI {t_svi:.1f} s ({args.svi_steps} steps), NUTS {t_nuts:.1f} s "
        f"({args.chains} x {args.warmup} + {args.samples} draws); NUTS / SVI = "
        f"{t_nuts / t_svi:.1f} (compilation included)"
    )
    return 0


def _figure(names, post: dict, table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(names)
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n, 2.6), squeeze=False)
    for i, (ax, name) in enumerate(zip(axes[0], names, strict=True)):
        lo, hi = np.quantile(
            np.concatenate([post["nuts"][:, i], post["svi"][:, i]]), [0.001, 0.999]
        )
        bins = np.linspace(lo, hi, 40)
        ax.hist(post["nuts"][:, i], bins=bins, density=True, alpha=0.5, label="NUTS")
        ax.hist(post["svi"][:, i], bins=bins, density=True, histtype="step", lw=1.5, label="SVI")
        ax.axvline(table.truth[i], color="k", ls="--", lw=1, label="truth")
        ax.set_title(name + (" *" if table.identified[i] else ""), fontsize=9)
        ax.set_yticks([])
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("posterior marginals (* well identified)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
