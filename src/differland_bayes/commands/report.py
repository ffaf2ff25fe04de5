"""``differland report RUN_DIR [--out DIR]``: diagnostics tables and an HTML report.

A thin layer over :func:`differland_bayes.analysis.report.build_report` (layout and
sections there and in ``docs/analysis.md``). JAX, ArviZ and matplotlib are imported only
when the command runs; figures use the Agg backend.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ._argtypes import int_at_least

__all__ = ["register", "run"]

log = logging.getLogger(__name__)

_positive_int = int_at_least(1)
_seed = int_at_least(0)


def run(args: argparse.Namespace) -> int:
    """Run ``differland report``; return the exit status.

    Parameters
    ----------
    args : argparse.Namespace
        ``run_dir``, ``out``, ``data``, ``samples``, ``seed``, ``overwrite`` and
        ``no_progress``.

    Returns
    -------
    int
        0 on success (user errors raise and are reported by the command line, status 2).

    Raises
    ------
    FileNotFoundError
        For a missing or incomplete run directory or data file.
    FileExistsError
        If report files exist and ``--overwrite`` is not given.
    ValueError
        If the data do not match the run.
    """
    import matplotlib

    matplotlib.use("Agg")
    from ..analysis.report import build_report

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory not found: {run_dir}")
    data, label = None, "training"
    if args.data is not None and args.data != "training":
        from ..bayes.fit import restore_fit
        from .predict import _load_data

        data, _ = _load_data(args.data, restore_fit(run_dir))
        label = str(Path(args.data).resolve())
    report = build_report(
        run_dir,
        args.out,
        data=data,
        data_label=label,
        num_samples=args.samples,
        seed=args.seed,
        overwrite=args.overwrite,
        progress_bar=not args.no_progress and sys.stderr.isatty(),
    )
    log.info("done: %s (%d table(s))", report.html, len(report.tables))
    if report.failed:
        log.warning("sections without content: %s (see the log above)", report.failed)
    return 0


def register(subparsers, formatter_class: type[argparse.HelpFormatter]) -> None:
    """Add the ``report`` subparser.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The ``differland`` subcommand group.
    formatter_class : type of argparse.HelpFormatter
        Help formatter shared by all subcommands.
    """
    from ..cli import PROG, _describe, _examples

    p = subparsers.add_parser(
        "report",
        help="diagnostics of a fitted run: CSV tables and an HTML report",
        description=_describe(
            "Evaluate the posterior of RUN_DIR at the sites of its training data (or of "
            "DATA, whose sites the run has not seen are predicted from their environment) "
            "and write into DIR (default RUN_DIR/report): datatree.nc (the run as an ArviZ "
            "DataTree: posterior, prior, posterior_predictive, observed_data, "
            "log_likelihood, constant_data, loss, network; reused while it matches the "
            "run and settings), CSV tables (scores per stream, site group and period; per "
            "site; PSIS-LOO) and report.html (self-contained, figures embedded). Existing "
            "files are refused unless --overwrite; every file is written atomically."
        ),
        epilog=_examples(
            f"{PROG} report runs/synthetic",
            f"{PROG} report runs/synthetic --out reports/synthetic --samples 400 --overwrite",
            f"{PROG} report runs/synthetic --data all_sites.nc --out reports/all-sites",
        ),
        formatter_class=formatter_class,
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory of 'differland fit'")
    p.add_argument("--out", metavar="DIR", help="output directory (default RUN_DIR/report)")
    p.add_argument(
        "--data",
        metavar="DATA",
        help="canonical dataset (.nc/.zarr) of the sites to evaluate (default: 'training')",
    )
    p.add_argument("--samples", type=_positive_int, default=200, metavar="N", help="draws")
    p.add_argument("--seed", type=_seed, default=0, metavar="S", help="random seed (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace existing report files")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
