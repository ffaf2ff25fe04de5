"""Scale of the synthetic world generator: a large DALEC993 world written to Zarr.

Writes ``--sites`` sites x ``--years`` years of monthly steps (default 50,000 x 23 years
= 276 months, the size of a global 0.5-degree land run) with
``differland_bayes.synthetic.synthesize_to_zarr`` into a temporary directory, block by
block, and prints wall time, throughput, peak resident memory and size on disk. The
store is read back lazily to check its dimensions, then deleted (``--keep`` keeps it).

Run from the repository root::

    python benchmarks/synthetic_scale.py            # full size (about a minute on 2 cores)
    python benchmarks/synthetic_scale.py --quick    # 2,048 sites x 5 years, a smoke test
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sites", type=int, default=None, help="sites (default 50000; --quick 2048)")
    p.add_argument("--years", type=int, default=None, help="years (default 23; --quick 5)")
    p.add_argument(
        "--block-size",
        type=int,
        default=None,
        help="sites per block (default: the generator's, about 2**19 site-steps)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the world")
    p.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    p.add_argument("--keep", metavar="PATH", help="move the store to PATH instead of deleting it")
    p.add_argument("--platform", default="cpu", help="JAX platform (default cpu)")
    a = p.parse_args(argv)
    a.sites = a.sites or (2048 if a.quick else 50_000)
    a.years = a.years or (5 if a.quick else 23)
    return a


def rss_mib() -> float:
    """Peak resident set size of this process so far, MiB (Linux reports KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 if sys.platform != "darwin" else 1024.0**2)


def disk_size(path: Path) -> int:
    """Bytes of all files under ``path``."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("JAX_PLATFORMS", args.platform)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("jax").setLevel(logging.WARNING)
    try:
        from differland_bayes.synthetic import synthesize_to_zarr
    except ImportError:  # running from a checkout without installing
        sys.path.insert(0, str(REPO / "src"))
        from differland_bayes.synthetic import synthesize_to_zarr
    import jax
    import xarray as xr

    rss_start = rss_mib()
    tmp = Path(tempfile.mkdtemp(prefix="synthetic-scale-"))
    try:
        path = tmp / "world.zarr"
        t0 = time.perf_counter()
        synthesize_to_zarr(
            path, args.sites, years=args.years, seed=args.seed, block_size=args.block_size
        )
        wall = time.perf_counter() - t0
        peak = rss_mib()
        size = disk_size(path)
        with xr.open_zarr(path, consolidated=False) as ds:
            dims = dict(ds.sizes)
            n_vars = len(ds.data_vars)
            chunks = ds["gpp"].encoding.get("chunks") or ds["gpp"].encoding.get("preferred_chunks")
        assert dims["site"] == args.sites, dims
        if args.keep:
            shutil.move(str(path), args.keep)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    steps = dims["time"]
    rows = [
        ("world", f"{args.sites:,} sites x {steps} months (dalec993, seed {args.seed})"),
        ("variables", f"{n_vars} data variables, gpp chunks {chunks}"),
        ("wall time", f"{wall:.1f} s (JIT compilation included)"),
        (
            "throughput",
            f"{args.sites / wall:,.0f} sites/s, {args.sites * steps / wall / 1e6:.2f} "
            "M site-steps/s",
        ),
        ("peak RSS", f"{peak:,.0f} MiB (after imports: {rss_start:,.0f} MiB)"),
        ("size on disk", f"{size / 2**20:,.0f} MiB ({size / args.sites / 1024:.1f} KiB per site)"),
        (
            "machine",
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
            f"JAX {jax.__version__} on {jax.default_backend()}",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    print()
    print("| quantity | value |")
    print("|---|---|")
    for k, v in rows:
        print(f"| {k:<{width}} | {v} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
