"""Throughput and compile time of the DALEC process models on CPU, float32.

Measures, for DALEC993 (monthly) and, for information, DALEC990 (daily):

* the forward run ``jit(vmap(simulate))`` returning every output;
* forward + gradient: ``jit(value_and_grad(loss))`` with
  ``loss = mean(NEE**2) + mean(ET) + mean(LAI)`` over all sites and steps, differentiated
  with respect to the unconstrained parameter matrix ``z`` of shape (sites, len(table));
* (information) the forward run reduced to that scalar loss inside the compiled function,
  which is what a likelihood needs and avoids writing every output to memory.

Forcing is real: the site forcing of the reference files tiled across sites and time
(the phenology clock keeps running across repetitions). Parameters are ``z ~ N(0, 1)``
(seeded). Throughput is site-steps per second from the median of ``--repeats`` timed
calls after one untimed warm-up call; "first call" is the wall time of the first call
(tracing + lowering + XLA compilation + one run), with JAX's persistent compilation
cache disabled.

Run from the repository root::

    python benchmarks/process_throughput.py            # full (~40 s on 2 idle cores)
    python benchmarks/process_throughput.py --quick    # smoke test
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Published implementation on the same kind of 2-core CPU machine (float32, DALEC993).
PUBLISHED_FWD = 2.2e6  #: site-steps / s, forward
PUBLISHED_GRAD = 0.63e6  #: site-steps / s, forward + gradient
PUBLISHED_GRAD_COMPILE = 5.0  #: s, compile time of the gradient
GOAL_SPEEDUP = 2.0  #: our goal: at least this times the published throughput ...
GOAL_COMPILE_FRACTION = 0.5  #: ... and at most this fraction of its compile time


def data_dir() -> Path:
    """Folder with ``reference/*.nc``: $DIFFERLAND_DATA_DIR or ``../shared/data``."""
    env = os.environ.get("DIFFERLAND_DATA_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed calls per measurement (median reported; default 7, 3 with --quick)",
    )
    p.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    p.add_argument(
        "--sites",
        type=int,
        nargs="+",
        default=None,
        help="DALEC993 site counts (default: 320 4096; --quick: 32)",
    )
    p.add_argument(
        "--months", type=int, default=None, help="DALEC993 steps (default 276; --quick: 48)"
    )
    p.add_argument(
        "--dalec990",
        type=int,
        nargs=2,
        default=None,
        metavar=("SITES", "DAYS"),
        help="DALEC990 size (default: 16 3287; --quick: 4 365)",
    )
    p.add_argument("--no-dalec990", action="store_true", help="skip the DALEC990 row")
    p.add_argument(
        "--platform",
        default="cpu",
        help="JAX platform to run on (default cpu; the goals refer to CPU)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of z ~ N(0, 1)")
    a = p.parse_args(argv)
    a.repeats = a.repeats or (3 if a.quick else 7)
    a.sites = a.sites or ([32] if a.quick else [320, 4096])
    a.months = a.months or (48 if a.quick else 276)
    a.dalec990 = a.dalec990 or ([4, 365] if a.quick else [16, 3287])
    return a


ARGS = parse_args()
os.environ.setdefault("JAX_PLATFORMS", ARGS.platform)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

try:
    from differland_bayes.process import get_model, simulate
except ImportError:  # running from a checkout without installing
    sys.path.insert(0, str(REPO / "src"))
    from differland_bayes.process import get_model, simulate

jax.config.update("jax_enable_compilation_cache", False)


# -- inputs -------------------------------------------------------------------------
def site_forcing(name: str) -> np.ndarray:
    """Distinct site forcing series of a reference file, (sites, time, columns), float64."""
    path = data_dir() / "reference" / f"{name}_reference.nc"
    if not path.exists():
        sys.exit(f"reference file not found: {path} (set DIFFERLAND_DATA_DIR)")
    with xr.open_dataset(path) as ds:
        forcing = ds["forcing"].values
        sites = ds["site"].values
    _, first = np.unique(sites, return_index=True)
    return forcing[np.sort(first)]


def tile_forcing(met: np.ndarray, n_sites: int, n_steps: int) -> np.ndarray:
    """Tile (sites, time, columns) forcing to (n_sites, n_steps, columns), float32.

    Repetitions in time advance the phenology clock (column 0, days) by the length of the
    series (sum of the step lengths, column 10) so that it keeps increasing.
    """
    reps = -(-n_steps // met.shape[1])
    span = met[:, :, 10].sum(axis=1, keepdims=True)
    blocks = []
    for k in range(reps):
        b = met.copy()
        b[:, :, 0] += k * span
        blocks.append(b)
    met = np.concatenate(blocks, axis=1)[:, :n_steps]
    idx = np.arange(n_sites) % met.shape[0]
    return np.ascontiguousarray(met[idx], dtype=np.float32)


# -- functions under test -----------------------------------------------------------
def make_functions(model):
    def run(z, met):
        params, pools0 = model.from_unconstrained(z)
        return simulate(model, params, pools0, model.forcing_from_matrix(met))

    def loss(z, met):
        out = jax.vmap(run)(z, met)
        return jnp.mean(out.nee**2) + jnp.mean(out.ET) + jnp.mean(out.lai)

    return {
        "forward": jax.jit(jax.vmap(run)),
        "forward + gradient": jax.jit(jax.value_and_grad(loss)),
        "forward, loss only (info)": jax.jit(loss),
    }


@dataclass
class Result:
    model: str
    sites: int
    steps: int
    kind: str
    first_call: float  #: s
    compile: float  #: s
    xla: float  #: s
    times: list[float]  #: s, timed calls
    other: float | None  #: CPUs busy with other processes while timing

    @property
    def rate(self) -> float:
        return self.sites * self.steps / statistics.median(self.times)

    @property
    def best(self) -> float:
        return self.sites * self.steps / min(self.times)


def cpu_busy() -> tuple[float, float, float] | None:
    """(wall s, CPU s used by the whole machine, CPU s used by this process), Linux only."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    own = os.times()
    busy = (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")  # minus idle and iowait
    return time.perf_counter(), busy, own.user + own.system


def other_load(before, after) -> float | None:
    """CPUs kept busy by other processes between two :func:`cpu_busy` snapshots."""
    if before is None or after is None or after[0] <= before[0]:
        return None
    other = ((after[1] - before[1]) - (after[2] - before[2])) / (after[0] - before[0])
    return min(max(other, 0.0), float(os.cpu_count() or 1))


@dataclass
class Timing:
    first_call: float  #: s: trace + lower + XLA compile + first run
    compile: float  #: s: trace + lower + XLA compile (the first call without its run)
    xla: float  #: s: the XLA compile alone
    times: list[float]  #: s, timed calls
    other: float | None  #: CPUs used by other processes during the whole measurement
    dtypes: set[str]


def measure(fn, args, repeats: int) -> Timing:
    """Time the first call (split into its parts), then ``repeats`` calls after a warm-up."""
    before = cpu_busy()
    t0 = time.perf_counter()
    lowered = fn.trace(*args).lower()
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    out = jax.block_until_ready(compiled(*args))
    t3 = time.perf_counter()
    dtypes = {str(x.dtype) for x in jax.tree.leaves(out)}
    del out
    jax.block_until_ready(compiled(*args))  # warm-up
    times = []
    for _ in range(repeats):
        t0_ = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - t0_)
    return Timing(t3 - t0, t2 - t0, t2 - t1, times, other_load(before, cpu_busy()), dtypes)


def bench_model(
    name: str, n_sites: int, n_steps: int, repeats: int, seed: int, kinds: tuple[str, ...]
) -> list[Result]:
    model = get_model(name)
    met = jnp.asarray(tile_forcing(site_forcing(name), n_sites, n_steps))
    z = jnp.asarray(
        np.random.default_rng(seed).standard_normal((n_sites, len(model.table)), np.float32)
    )
    fns = make_functions(model)
    results = []
    for kind in kinds:
        t = measure(fns[kind], (z, met), repeats)
        if t.dtypes != {"float32"}:
            raise RuntimeError(f"{name} {kind}: expected float32 results, found {t.dtypes}")
        results.append(
            Result(
                name.upper(),
                n_sites,
                n_steps,
                kind,
                t.first_call,
                t.compile,
                t.xla,
                t.times,
                t.other,
            )
        )
        print(
            f"  {name} {n_sites} x {n_steps} {kind}: first call {t.first_call:.2f} s, "
            f"median {statistics.median(t.times) * 1e3:.1f} ms",
            file=sys.stderr,
            flush=True,
        )
    return results


# -- report -------------------------------------------------------------------------
def fmt_rate(x: float) -> str:
    return f"{x / 1e6:.2f} M"


def machine_info() -> list[str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    import jaxlib

    return [
        f"- jax {jax.__version__}, jaxlib {jaxlib.__version__}, backend "
        f"`{jax.default_backend()}`, devices {[str(d) for d in jax.devices()]}",
        f"- CPU: {cpu}; {os.cpu_count()} logical CPUs, {usable} usable by this process",
        f"- Python {platform.python_version()} on {platform.system()} {platform.machine()}; "
        f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}",
    ]


def load_average() -> float | None:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def report(results: list[Result], args: argparse.Namespace, load0, load1) -> str:
    goal_fwd, goal_grad = GOAL_SPEEDUP * PUBLISHED_FWD, GOAL_SPEEDUP * PUBLISHED_GRAD
    goal_compile = GOAL_COMPILE_FRACTION * PUBLISHED_GRAD_COMPILE
    lines = ["## Process-model throughput (float32, CPU)", ""]
    lines += machine_info()
    lines.append(
        f"- load average (1 min) before / after: {load0} / {load1}; median of "
        f"{args.repeats} timed calls after one warm-up call"
    )
    lines += [
        "",
        f"Published implementation, same kind of 2-core machine: {fmt_rate(PUBLISHED_FWD)} "
        f"site-steps/s forward, {fmt_rate(PUBLISHED_GRAD)} site-steps/s forward + gradient, "
        f"~{PUBLISHED_GRAD_COMPILE:.0f} s to compile the gradient. Goal: >= "
        f"{GOAL_SPEEDUP:g}x the throughput ({fmt_rate(goal_fwd)}, {fmt_rate(goal_grad)}) "
        f"and <= {GOAL_COMPILE_FRACTION:g}x the compile time ({goal_compile:g} s, checked "
        "against our trace + lower + XLA compile time).",
        "",
        "| model | sites x steps | pass | first call (s) | compile (s) | of which XLA (s) | "
        "site-steps/s (median) | best | other procs (CPUs) | published | goal | "
        "meets throughput goal | meets compile goal |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in results:
        published = goal = meets = meets_c = "—"
        if r.model == "DALEC993" and r.kind == "forward":
            published, goal = fmt_rate(PUBLISHED_FWD), ">= " + fmt_rate(goal_fwd)
            meets = "yes" if r.rate >= goal_fwd else "**no**"
        elif r.model == "DALEC993" and r.kind == "forward + gradient":
            published = f"{fmt_rate(PUBLISHED_GRAD)}; ~{PUBLISHED_GRAD_COMPILE:g} s"
            goal = f">= {fmt_rate(goal_grad)}; <= {goal_compile:g} s"
            meets = "yes" if r.rate >= goal_grad else "**no**"
            meets_c = "yes" if r.compile <= goal_compile else "**no**"
        other = "?" if r.other is None else f"{r.other:.1f}"
        lines.append(
            f"| {r.model} | {r.sites} x {r.steps} | {r.kind} | {r.first_call:.2f} | "
            f"{r.compile:.2f} | {r.xla:.2f} | {fmt_rate(r.rate)} | {fmt_rate(r.best)} | {other} | "
            f"{published} | {goal} | {meets} | {meets_c} |"
        )
    lines += [
        "",
        "first call = tracing + lowering + XLA compilation + one run; compile = the first "
        "call without its run (tracing + lowering + XLA); best = fastest "
        "timed call; other procs = CPUs kept busy by other processes during the "
        "row's measurement (from /proc/stat). XLA's CPU runtime runs independent "
        "operations on both CPUs, so any other busy process slows these figures (up to "
        "2x on a 2-CPU VM); compare figures taken at similar load.",
    ]
    busiest = max((r.other for r in results if r.other is not None), default=None)
    if busiest is not None and busiest > 0.25:
        lines.append(
            f"\n**Warning**: other processes kept up to {busiest:.1f} CPUs busy during the "
            "timing; these figures may understate the attainable throughput."
        )
    return "\n".join(lines)


def main() -> None:
    args = ARGS
    load0 = load_average()
    kinds = ("forward", "forward + gradient", "forward, loss only (info)")
    results: list[Result] = []
    for n in args.sites:
        results += bench_model("dalec993", n, args.months, args.repeats, args.seed, kinds)
    if not args.no_dalec990:
        n, t = args.dalec990
        results += bench_model("dalec990", n, t, args.repeats, args.seed, kinds[:2])
    print(report(results, args, load0, load_average()))


if __name__ == "__main__":
    main()
