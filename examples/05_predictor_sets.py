"""Compare predictor sets of the prior network by expected log predictive density.

Shows: the ``[data] predictors`` key of a fit configuration, which chooses the inputs of
the environment -> parameter network, and model comparison by ELPD. The same data are
fitted three times, with

* ``class``: the vegetation class alone (``predictors = ["vegetation_class"]``), the
  plant-functional-type lookup table of classic land models;
* ``environment``: the continuous predictors without the class (synthetic world:
  temperature, precipitation, elevation, stand age and latitude; it has no soil
  variables; FluxVal: |latitude|, temperature and precipitation);
* ``all``: both (``predictors = []``, the default).

Each run is evaluated at every site of the world, including the sites it was **not**
fitted on (20 % of the synthetic sites), which it predicts from their predictors alone
(the selection is stored in the run, so new sites are encoded with the same columns).
The runs are ranked with :func:`~differland_bayes.analysis.compare_runs` (the library
behind ``differland compare``): PSIS-LOO ELPD over the fitted observations with
standard errors and stacking weights, plus the log predictive density of what no run
fitted. That is where the predictor set matters, so it is also split into the withheld
months of the fitted sites and the **unseen sites**, with standard errors of the
differences to the best run (paired over the same observations).

Writes to ``--out``: one run directory per set (``run-<set>``), ``compare.csv`` and
``compare.png`` (PSIS-LOO), ``out_of_fit.csv`` and ``out_of_fit.png`` (withheld
months and unseen sites). Prints both tables. Without ``--quick`` it also runs
``differland compare`` on the three run directories (their training data) into
``compare-cli/``, as one would from the shell::

    differland compare OUT/run-class OUT/run-environment OUT/run-all --out OUT/compare-cli

Runs in about 2 minutes on a 2-core laptop with the default settings (a synthetic world
of 96 sites x 4 years, 77 of them fitted; a MAP warm start of 1000 steps, then 3000 SVI
steps per fit; 100 posterior draws); ``--quick`` (8 sites x 2 years, 20 steps, 30 draws;
about 35 s) checks that everything runs, its numbers mean nothing. Result with the
default settings: ``all`` ranks first by PSIS-LOO (ELPD differences -66 +- 7 nat for
``class``, -84 +- 9 for ``environment``) and at the 19 unseen sites (lpd -0.54 nat per
observation against -0.60 for ``class`` and -0.74 for ``environment``; differences -179
+- 22 and -550 +- 30 nat): the world's parameters depend on both the class and the
climate (265-369 of the 5089 Pareto k exceed 0.5, so the PSIS-LOO values are rough; the
unseen sites are the direct check). ``--data fluxval`` compares the same sets on
CARDAMOM-FluxVal (``examples/configs/fluxval.toml``; about ``--max-sites`` sites, 20 %
of them left out; about 4 minutes with the default 60, i.e. 59 sites). There, with the
default settings, the sets tie by PSIS-LOO (differences within one standard error), and
at the 12 unseen sites ``all`` and ``environment`` (|latitude|, temperature,
precipitation) tie (-1.79 nat per observation) ahead of ``class`` (-1.82; difference -96
+- 11 nat). Data: ``$DIFFERLAND_DATA_DIR`` (default ``../shared/data`` next to the
repository).

Usage::

    python examples/05_predictor_sets.py --out runs/predictor-sets
    python examples/05_predictor_sets.py --out runs/predictor-sets-fluxval --data fluxval
    python examples/05_predictor_sets.py --out /tmp/sets --quick
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

log = logging.getLogger("example")
REPO = Path(__file__).resolve().parents[1]
CONFIGS = {
    "synthetic": REPO / "examples" / "configs" / "synthetic.toml",
    "fluxval": REPO / "examples" / "configs" / "fluxval.toml",
}
SETTINGS = {
    "synthetic": {
        "data.synthetic.sites": 96,
        "data.site_split": "train",  # fit 80 % of the sites; the others are unseen
        "data.holdout_fraction": 0.0,  # no early stopping: a fixed, long schedule
        "svi.map_steps": 1000,  # MAP warm start, then the guide
        "svi.map_lr": 0.02,
        "svi.steps": 3000,
        "svi.lr": 0.01,
        "svi.warmup": 100,
        "svi.checkpoint_every": 0,
    },
    "fluxval": {"data.holdout_fraction": 0.0, "svi.checkpoint_every": 0},
}
QUICK = {
    "synthetic": {
        "data.synthetic.sites": 8,
        "data.synthetic.years": 2,
        "svi.map_steps": 0,
        "svi.steps": 20,
        "svi.warmup": 0,
        "network.hidden": [8],
    },
    "fluxval": {"svi.steps": 20, "svi.map_steps": 20, "network.hidden": [8]},
}
SETS = ("class", "environment", "all")
OUTPUTS = ("compare.csv", "compare.png", "out_of_fit.csv", "out_of_fit.png", "compare-cli")


def predictor_sets(ds: xr.Dataset) -> dict[str, list[str]]:
    """Return the compared selections (``[data] predictors``) for the features of ``ds``."""
    env = [str(f) for f in ds["feature"].values]
    return {"class": ["vegetation_class"], "environment": env, "all": []}


def _log_mean_exp(ll: np.ndarray) -> np.ndarray:
    m = ll.max(axis=0)
    return m + np.log(np.mean(np.exp(ll - m), axis=0))


def pointwise_lpd(dt: xr.DataTree) -> dict[str, np.ndarray]:
    """Pointwise log predictive density of the observations the run did not fit.

    Returns ``{"withheld months": ..., "unseen sites": ...}``, each the values of every
    stream's observed entries (same order for runs evaluated on the same data).
    """
    from differland_bayes.analysis.diagnostics import in_fit_mask, streams_of

    const = dt["constant_data"]
    fitted = np.asarray(const["fitted"].values, bool)
    heldout = np.asarray(const["heldout"].values, bool)
    out: dict[str, list[np.ndarray]] = {"withheld months": [], "unseen sites": []}
    for s in streams_of(dt):
        obs = np.asarray(dt["observed_data"][s].transpose("site", "time").values, float)
        seen = np.isfinite(obs)
        ll = np.asarray(dt["log_likelihood"][s].transpose("sample", "site", "time").values)
        groups = {
            "withheld months": seen & ~in_fit_mask(dt, s) & (fitted & ~heldout)[:, None],
            "unseen sites": seen & ~fitted[:, None],
        }
        for name, keep in groups.items():
            out[name].append(_log_mean_exp(ll[:, keep]))
    return {k: np.concatenate(v) for k, v in out.items()}


def out_of_fit_table(trees: dict[str, xr.DataTree]) -> pd.DataFrame:
    """Sum of the pointwise lpd per run and group, with paired SEs of the differences."""
    lpd = {name: pointwise_lpd(dt) for name, dt in trees.items()}
    rows = []
    for group in ("withheld months", "unseen sites"):
        values = {name: v[group] for name, v in lpd.items()}
        n = len(next(iter(values.values())))
        if n == 0:
            continue
        best = max(values, key=lambda k: values[k].sum())
        for name, v in values.items():
            diff = v - values[best]
            rows.append(
                {
                    "evaluation": group,
                    "run": name,
                    "n": n,
                    "lpd": v.sum(),
                    "se": np.sqrt(n) * v.std(),
                    "lpd_per_obs": v.mean(),
                    "lpd_diff": diff.sum(),
                    "dse": np.sqrt(n) * diff.std(),
                }
            )
    return pd.DataFrame(rows).sort_values(["evaluation", "lpd"], ascending=[True, False])


def main(argv: list[str] | None = None) -> int:
    """Run the example; returns 0 on success."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--data", choices=tuple(CONFIGS), default="synthetic", help="data set")
    p.add_argument("--samples", type=int, default=100, help="posterior draws per run")
    p.add_argument("--max-sites", type=int, default=60, help="fluxval: sites used (0: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the world, the fits and draws")
    p.add_argument("--quick", action="store_true", help="tiny settings (about 35 s)")
    p.add_argument("--overwrite", action="store_true", help="refit and replace earlier results")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    out = Path(args.out)
    targets = [out / n for n in OUTPUTS] + [out / f"run-{s}" for s in SETS]
    existing = [t for t in targets if t.exists()]
    if existing and not args.overwrite:
        raise SystemExit(f"{existing[0]} exists; use --overwrite to replace it")
    out.mkdir(parents=True, exist_ok=True)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from differland_bayes.analysis import compare_runs, plot_elpd_comparison, to_datatree
    from differland_bayes.analysis.compare import write_table
    from differland_bayes.analysis.crossval import site_folds
    from differland_bayes.bayes.fit import load_dataset, run_fit
    from differland_bayes.bayes.fitconfig import config_with, load_config

    overrides = {**SETTINGS[args.data], "svi.seed": args.seed}
    if args.data == "synthetic":
        overrides["data.synthetic.seed"] = args.seed
    if args.quick:
        overrides.update(QUICK[args.data])
        args.samples = min(args.samples, 30)  # PSIS needs >= 25 draws
        args.max_sites = min(args.max_sites or 16, 16)
    cfg = config_with(load_config(CONFIGS[args.data]), overrides)

    # 1. the data: every site of the world; the fits see only the training sites
    ds, _ = load_dataset(config_with(cfg, {"data.site_split": "all"}))
    if args.data == "synthetic":
        fit_sites = [
            str(s)
            for s, k in zip(ds.site.values, ds.split_site.values, strict=True)
            if str(k) == "train"
        ]
    else:  # fluxval: a stratified subset of sites, the first of five folds left out
        veg = ds.vegetation_class.values
        if args.max_sites and ds.sizes["site"] > args.max_sites:
            keep = site_folds(
                list(ds.site.values),
                math.ceil(ds.sizes["site"] / args.max_sites),
                seed=args.seed,
                strata=veg,
            )[0]
            ds = ds.isel(site=keep)
        left_out = site_folds(
            list(ds.site.values), 5, seed=args.seed, strata=ds.vegetation_class.values
        )[0]
        fit_sites = [str(s) for i, s in enumerate(ds.site.values) if i not in set(left_out)]
        cfg = config_with(cfg, {"data.sites": fit_sites, "data.site_split": "all"})
    log.info(
        "%d sites: %d fitted, %d unseen",
        ds.sizes["site"],
        len(fit_sites),
        ds.sizes["site"] - len(fit_sites),
    )

    # 2. one fit per predictor set; each evaluated at every site
    sets = predictor_sets(ds)
    trees, runs = {}, {}
    for name in SETS:
        log.info("predictor set %r: %s", name, sets[name] or "every predictor")
        run_cfg = config_with(cfg, {"data.predictors": sets[name]})
        runs[name] = out / f"run-{name}"
        run_fit(run_cfg, runs[name], overwrite=args.overwrite, progress_bar=False)
        trees[name] = to_datatree(
            runs[name], data=ds, num_samples=args.samples, seed=args.seed, progress_bar=False
        )

    # 3. ELPD: PSIS-LOO over the fitted observations; lpd of what no run fitted
    table = compare_runs(trees)
    write_table(table, out / "compare.csv", overwrite=args.overwrite)
    fig = plot_elpd_comparison(table)
    fig.savefig(out / "compare.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    oof = out_of_fit_table(trees)
    oof.to_csv(out / "out_of_fit.csv", index=False, float_format="%.4f")
    _figure(oof, out / "out_of_fit.png")
    if not args.quick:  # the same comparison from the command line (training data)
        from differland_bayes.cli import main as cli

        cli_args = [
            "compare",
            *map(str, runs.values()),
            "--out",
            str(out / "compare-cli"),
            "--samples",
            str(args.samples),
            "--no-progress",
        ]
        assert cli([*cli_args, *(["--overwrite"] if args.overwrite else [])]) == 0

    with pd.option_context("display.width", 140, "display.float_format", "{:.4g}".format):
        print("PSIS-LOO over the fitted observations (all streams, nat):")
        print(
            table[
                [
                    "rank",
                    "elpd",
                    "se",
                    "elpd_diff",
                    "dse",
                    "weight",
                    "n",
                    "k_max",
                    "lpd_out_of_fit",
                    "n_out_of_fit",
                ]
            ].to_string()
        )
        print("\nlog predictive density of the observations no run fitted (nat):")
        print(oof.to_string(index=False))
    unseen = oof[oof.evaluation == "unseen sites"]
    if len(unseen):
        best = unseen.iloc[0]
        print(
            f"\nbest predictor set at unseen sites: {best.run} "
            f"({best.lpd_per_obs:.3f} nat per observation)"
        )
    return 0


def _figure(oof: pd.DataFrame, path: Path) -> None:
    import matplotlib.pyplot as plt

    groups = list(dict.fromkeys(oof.evaluation))
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3), squeeze=False)
    for ax, g in zip(axes[0], groups, strict=True):
        sub = oof[oof.evaluation == g].set_index("run").reindex(list(SETS))
        ax.errorbar(sub.lpd_diff, np.arange(len(sub)), xerr=sub.dse, fmt="o", capsize=3)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_yticks(np.arange(len(sub)), sub.index)
        ax.set_title(f"{g} (n = {int(sub.n.iloc[0])})", fontsize=9)
        ax.set_xlabel("lpd difference to the best set (nat)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
