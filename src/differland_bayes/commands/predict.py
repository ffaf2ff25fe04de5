"""``differland predict RUN_DIR --data DATA --out PRED.nc``: posterior predictive.

A thin layer over :func:`differland_bayes.bayes.predict_dataset.predict_to_dataset`:
read the run, read and validate ``DATA`` (or reload the data the run was fitted on with
``--data training``), predict, and write the result atomically (layout: the module
docstring of :mod:`differland_bayes.bayes.predict_dataset`). JAX and xarray are imported
only when the command runs.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

__all__ = ["TRAINING", "parse_quantiles", "register", "run"]

log = logging.getLogger(__name__)

#: the ``--data`` value naming the data the run was fitted on
TRAINING = "training"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, found {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, found {text!r}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, found {text!r}") from None


def parse_quantiles(text: str) -> tuple[float, ...]:
    """Parse ``--quantiles``: comma-separated increasing probabilities in ``[0, 1]``.

    Parameters
    ----------
    text : str
        E.g. ``"0.05,0.5,0.95"``.

    Returns
    -------
    tuple of float
        The probabilities.

    Raises
    ------
    argparse.ArgumentTypeError
        If an entry is not a number in ``[0, 1]`` or they do not increase.
    """
    try:
        q = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, found {text!r}"
        ) from None
    if not q or not all(0.0 <= x <= 1.0 for x in q):
        raise argparse.ArgumentTypeError(f"expected probabilities in [0, 1], found {text!r}")
    if any(b <= a for a, b in zip(q, q[1:], strict=False)):
        raise argparse.ArgumentTypeError(f"expected increasing quantiles, found {text!r}")
    return q


def _load_data(spec: str, fit) -> tuple[object, str]:
    """Read and validate ``--data``; return ``(dataset, description)``."""
    from ..bayes.fit import DatasetError, load_dataset

    if spec == TRAINING:
        ds, source = load_dataset(fit.config, fit.process)
        return ds, f"training data ({source})"
    from ..dataset import read_dataset
    from ..validate import validate_dataset

    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"--data: {path}: no such file or directory")
    try:
        ds = read_dataset(path)
    except (OSError, KeyError, TypeError, ValueError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"--data: cannot read {path}: {reason}") from e
    report = validate_dataset(ds)
    if not report.ok:
        for p in report.errors:
            log.error("%s", p)
        n = len(report.errors)
        raise DatasetError(
            f"{path}: the dataset has {n} error{'s' if n != 1 else ''}, refusing to predict "
            f"(first: {report.errors[0]}); 'differland validate {path}' lists them",
            [str(p) for p in report.errors],
        )
    if fit.process.name == "dalec993" and report.step == "daily":
        from ..io import to_monthly

        log.info("data: daily; aggregating to calendar months for dalec993")
        ds = to_monthly(ds)
    return ds, str(path)


def run(args: argparse.Namespace) -> int:
    """Run ``differland predict``; return the exit status.

    Parameters
    ----------
    args : argparse.Namespace
        ``run_dir``, ``data``, ``out``, ``samples``, ``quantiles``, ``draws``, ``seed``
        and ``overwrite``.

    Returns
    -------
    int
        0 on success (user errors raise and are reported by the command line, status 2).

    Raises
    ------
    FileNotFoundError
        For a missing or incomplete run directory or data file.
    FileExistsError
        If ``--out`` exists and ``--overwrite`` is not given.
    ValueError
        If the data are invalid or do not match the run.
    """
    from ..dataset import write_dataset
    from ..io.atomic import check_can_write

    out = Path(args.out)
    if out.suffix.lower() not in (".nc", ".nc4", ".netcdf", ".zarr"):
        raise ValueError(f"--out: expected a .nc or .zarr path, found {out}")
    check_can_write(out, overwrite=args.overwrite)  # before the expensive part

    from ..bayes.fit import restore_fit
    from ..bayes.predict_dataset import predict_to_dataset

    run_dirs = list(args.run_dir)
    if args.samples < len(run_dirs):
        raise ValueError(
            f"--samples: expected at least one draw per run ({len(run_dirs)}), found {args.samples}"
        )
    fits = [restore_fit(r) for r in run_dirs]
    ds, source = _load_data(args.data, fits[0])
    pred = predict_to_dataset(
        run_dirs,
        ds,
        num_samples=args.samples,
        quantiles=args.quantiles,
        draws=args.draws,
        key=args.seed,
        fit=fits,
        new_site_pools=args.new_site_pools,
    )
    pred.attrs["data_source"] = source
    write_dataset(pred, out, overwrite=args.overwrite)
    n_fit = int(pred["fitted"].sum())
    log.info(
        "done: %d site(s) (%d fitted, %d new) x %d step(s), %d draw(s); written to %s",
        pred.sizes["site"], n_fit, pred.sizes["site"] - n_fit, pred.sizes["time"],
        args.samples, out,
    )  # fmt: skip
    return 0


def register(subparsers, formatter_class: type[argparse.HelpFormatter]) -> None:
    """Add the ``predict`` subparser.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The ``differland`` subcommand group.
    formatter_class : type of argparse.HelpFormatter
        Help formatter shared by all subcommands.
    """
    from ..cli import PROG, _describe, _examples

    p = subparsers.add_parser(
        "predict",
        help="posterior predictive of a fitted run for the sites of a dataset",
        description=_describe(
            "Predict the sites of DATA (a canonical .nc/.zarr, or 'training' for the data "
            "RUN_DIR was fitted on) with the posterior of RUN_DIR. Sites the run was "
            "fitted on (matched by site id) use their fitted site parameters; other "
            "sites are predicted from their environment alone; the 'fitted' coordinate "
            "says which. PRED.nc has DATA's site and time coordinates and, for every "
            "stream of the run, <stream> (posterior predictive mean, with observation "
            "noise), <stream>_quantile (quantile, site, time), <stream>_draws (sample, "
            "site, time; with --draws) and the observations <stream>_obs with "
            "<stream>_mask, so that <stream> - <stream>_obs are the residuals; and "
            "parameters_quantile (quantile, site, parameter) in physical units "
            "(parameter_units). DATA is validated first and must have the run's streams "
            "and predictors. The output is written atomically; an existing one is "
            "refused unless --overwrite. Several RUN_DIRs (the same configuration "
            "fitted with different seeds, say) are pooled: the draws are split evenly "
            "between the runs and their mixture is summarised; with 'training' DATA is "
            "the first run's training data."
        ),
        epilog=_examples(
            f"{PROG} predict runs/synthetic --data training --out runs/synthetic-pred.nc",
            f"{PROG} predict runs/synthetic --data new_sites.nc --out pred.nc --samples 500 "
            "--quantiles 0.025,0.5,0.975 --draws",
            f"{PROG} predict runs/seed0 runs/seed1 runs/seed2 --data new_sites.nc "
            "--out pred-ensemble.nc",
        ),
        formatter_class=formatter_class,
    )
    p.add_argument(
        "run_dir",
        metavar="RUN_DIR",
        nargs="+",
        help="run directory of 'differland fit'; several pool their posteriors as an "
        "equal-weight ensemble (e.g. one configuration fitted with several seeds)",
    )
    p.add_argument(
        "--data",
        metavar="DATA",
        required=True,
        help=f"canonical dataset (.nc/.zarr) of the sites to predict, or '{TRAINING}'",
    )
    p.add_argument("--out", metavar="PRED.nc", required=True, help="output (.nc or .zarr)")
    p.add_argument(
        "--samples",
        type=_positive_int,
        default=200,
        metavar="N",
        help="posterior draws",
    )
    p.add_argument(
        "--quantiles",
        type=parse_quantiles,
        default="0.05,0.5,0.95",
        metavar="Q,...",
        help="comma-separated increasing quantiles",
    )
    p.add_argument("--draws", action="store_true", help="also write every draw")
    p.add_argument(
        "--new-site-pools",
        choices=("network", "equilibrium"),
        default="network",
        help="initial carbon pools of sites the run did not fit: drawn through the network "
        "like the other parameters, or root/wood/litter/SOM in equilibrium with each draw",
    )
    p.add_argument("--seed", type=_int, default=0, metavar="S", help="random seed (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.set_defaults(func=run)
