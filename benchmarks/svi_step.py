"""Cost of one SVI step of the FluxVal fit, with and without the seasonal discrepancy.

Builds the fit of ``examples/configs/fluxval.toml`` (176 CARDAMOM-FluxVal sites x 192
months, DALEC993, a minibatch of 32 sites, mean-field guide) in three variants of its
``[likelihood]`` and times the jitted SVI update:

* ``off``: no discrepancy (``discrepancy = []``);
* ``zero mean``: a seasonal discrepancy of GPP, NEE and ET with a zero prior mean;
* ``environment mean``: the same with the environment-predicted mean (the example's
  setting).

Columns: *first call* = tracing, compilation and the first step; *ms / step* = the median
of ``--repeats`` blocks of ``--steps`` steps after a warm-up block, divided by the steps;
*vs off* = that time over the ``off`` row's (``-`` when ``off`` is not timed first;
``--variants`` picks the rows). Data from ``$DIFFERLAND_DATA_DIR`` (default
``../shared/data``).

Run from the repository root::

    python benchmarks/svi_step.py            # about a minute on 2 idle cores
    python benchmarks/svi_step.py --quick    # 16 sites x 3 years, a smoke test
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VARIANTS = {
    "off": {"likelihood.discrepancy": []},
    "zero mean": {"likelihood.discrepancy_mean": "zero"},
    "environment mean": {"likelihood.discrepancy_mean": "environment"},
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=50, help="steps per timed block (default 50)")
    p.add_argument("--repeats", type=int, default=5, help="timed blocks (default 5)")
    p.add_argument("--quick", action="store_true",
                   help="16 sites x 3 years, 1 block of 5 steps (a smoke test)")  # fmt: skip
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                   help="the variants to time (default all)")  # fmt: skip
    p.add_argument("--platform", default="cpu", help="JAX platform (default cpu)")
    a = p.parse_args(argv)
    if a.quick:
        a.steps, a.repeats = 5, 1
    return a


def time_variant(cfg, ds, steps: int, repeats: int) -> tuple[float, float]:
    """(first call s, median s per step) of the jitted SVI update."""
    import jax
    import numpy as np
    from numpyro.infer import SVI, Trace_ELBO

    from differland_bayes.bayes.fit_problem import build_problem
    from differland_bayes.bayes.model import hybrid_model
    from differland_bayes.bayes.svi import _to_numpyro_optim

    problem = build_problem(cfg, ds)
    svi = SVI(hybrid_model, problem.guide, _to_numpyro_optim(problem.optimizer), Trace_ELBO())
    kw = problem.model_kwargs
    t0 = time.perf_counter()
    state = svi.init(problem.key, problem.data, **kw)
    update = jax.jit(lambda s: svi.update(s, problem.data, **kw))
    state, loss = update(state)
    jax.block_until_ready(loss)
    first = time.perf_counter() - t0

    def block(s):
        for _ in range(steps):
            s, loss = update(s)
        jax.block_until_ready(loss)
        return s

    state = block(state)  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        state = block(state)
        times.append((time.perf_counter() - t) / steps)
    return first, float(np.median(times))


def main(argv=None) -> int:
    a = parse_args(argv)
    os.environ.setdefault("JAX_PLATFORMS", a.platform)
    os.environ.setdefault("DIFFERLAND_DATA_DIR", str(REPO.parent / "shared" / "data"))
    import jax

    from differland_bayes.bayes.fit_data import load_dataset
    from differland_bayes.bayes.fitconfig import config_with, load_config

    base = load_config(REPO / "examples" / "configs" / "fluxval.toml")
    base = config_with(base, {"data.holdout_fraction": 0.0})
    ds, _ = load_dataset(config_with(base, {"data.sites": []}))
    if a.quick:
        sites = [str(s) for s in ds.site.values[:16]]
        base = config_with(base, {"data.sites": sites, "svi.batch_size": 8})
        ds = ds.sel(site=sites).isel(time=slice(0, 36))
    print(f"# SVI step of the FluxVal fit ({ds.sizes['site']} sites x {ds.sizes['time']} "
          f"months, batch {base.svi.batch_size}, guide {base.svi.guide})")  # fmt: skip
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"jax {jax.__version__} on {jax.devices()[0].platform}\n")  # fmt: skip
    print("| discrepancy | first call (s) | ms / step | vs off |")
    print("|---|---|---|---|")
    ref = None
    for name in a.variants:
        first, per_step = time_variant(config_with(base, VARIANTS[name]), ds, a.steps, a.repeats)
        if name == "off":
            ref = per_step
        ratio = f"{per_step / ref:.2f}" if ref else "-"
        print(f"| {name} | {first:.1f} | {1e3 * per_step:.1f} | {ratio} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
