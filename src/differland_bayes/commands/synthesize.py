"""``differland synthesize``: write a synthetic multi-site world with a known truth.

The world (:func:`differland_bayes.synthetic.synthesize`) is written to NetCDF (``.nc``,
built in memory) or Zarr (``.zarr``, written block by block with bounded memory). JAX and
xarray are imported only when the command runs.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ._argtypes import int_at_least

__all__ = ["register"]

log = logging.getLogger(__name__)

SUFFIXES = (".nc", ".zarr")
STREAM_CHOICES = ("gpp", "nee", "reco", "et", "lai", "biomass", "sif", "vod")


_positive_int = int_at_least(1)


_non_negative_int = int_at_least(0)


def register(subparsers, formatter_class: type[argparse.HelpFormatter]) -> None:
    """Add the ``synthesize`` subparser."""
    from ..cli import PROG, _describe, _examples

    p = subparsers.add_parser(
        "synthesize",
        help="write a synthetic multi-site dataset with a known truth",
        description=_describe(
            "Generate a synthetic world: sites with environments from realistic ranges, a "
            "consistent climate (or forcing resampled from a real dataset), true parameters "
            "that follow a known nonlinear function of the environment plus a site "
            "residual, a simulation with the process model, and noisy observations with "
            "gaps and train/validation splits. The output is a canonical dataset "
            "(docs/data-format.md) that also stores the truth (true_z, true_parameters, "
            "relationship_* coefficients, true_<stream>). .nc is built in memory; .zarr is "
            "written block by block (bounded memory, any number of sites)."
        ),
        epilog=_examples(
            f"{PROG} synthesize --sites 64 --years 10 --seed 0 --out world.nc",
            f"{PROG} synthesize --sites 50000 --years 23 --out world.zarr --overwrite",
            f"{PROG} synthesize --sites 32 --model dalec990 --years 3 --streams gpp nee et "
            "--out daily.nc",
        ),
        formatter_class=formatter_class,
    )
    p.add_argument("--sites", type=_positive_int, default=64, help="number of sites")
    p.add_argument(
        "--model",
        choices=("dalec993", "dalec990"),
        default="dalec993",
        help="process model: dalec993 (monthly steps) or dalec990 (daily steps)",
    )
    p.add_argument(
        "--mode",
        choices=("faithful", "conserving"),
        default="faithful",
        help="numerics of the process model",
    )
    p.add_argument("--years", type=_positive_int, default=10, help="calendar years simulated")
    p.add_argument("--start-year", type=int, default=2001, help="first calendar year")
    p.add_argument(
        "--seed", type=_non_negative_int, default=0, help="random seed (same seed, same dataset)"
    )
    p.add_argument(
        "--streams",
        nargs="+",
        choices=STREAM_CHOICES,
        metavar="STREAM",
        help="observation streams (default: gpp nee et lai; sif and vod need dalec993); "
        f"choices: {' '.join(STREAM_CHOICES)}",
    )
    p.add_argument(
        "--gap-fraction",
        type=float,
        default=0.3,
        help="target fraction of missing observations per stream",
    )
    p.add_argument(
        "--free-parameters",
        nargs="+",
        metavar="NAME",
        help="parameters that follow the environment relationship (default: all of the "
        "default relationship's)",
    )
    p.add_argument(
        "--other-parameters",
        choices=("default", "random"),
        default="default",
        help="parameters outside the relationship: fixed at the default site's values, or "
        "with independent random site deviations",
    )
    p.add_argument(
        "--resample-forcing",
        metavar="PATH",
        help="canonical dataset (.nc or .zarr) whose forcing is resampled by calendar year "
        "instead of generating a climate",
    )
    p.add_argument(
        "--block-size",
        type=_positive_int,
        help="sites simulated together (bounds memory; does not change the values)",
    )
    p.add_argument("--out", metavar="PATH", required=True, help="output file: .nc or .zarr")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from ..dataset import write_dataset
    from ..io.atomic import check_can_write
    from ..process.registry import get_model
    from ..synthetic import synthesize, synthesize_to_zarr

    out = Path(args.out)
    if out.suffix.lower() not in SUFFIXES:
        raise ValueError(f"--out {out}: expected a .nc or .zarr path")
    check_can_write(out, overwrite=args.overwrite)  # fail before any work
    kwargs = {
        "model": get_model(args.model, mode=args.mode),
        "years": args.years,
        "start_year": args.start_year,
        "seed": args.seed,
        "streams": args.streams,
        "gap_fraction": args.gap_fraction,
        "free_parameters": args.free_parameters,
        "other_parameters": args.other_parameters,
        "resample_forcing_from": args.resample_forcing,
        "block_size": args.block_size,
        "progress": sys.stderr.isatty(),
    }
    if out.suffix.lower() == ".zarr":
        synthesize_to_zarr(out, args.sites, overwrite=args.overwrite, **kwargs)
    else:
        write_dataset(synthesize(args.sites, **kwargs), out, overwrite=args.overwrite)
    return 0
