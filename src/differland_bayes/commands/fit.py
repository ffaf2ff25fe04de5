"""``differland fit CONFIG.toml --out RUN_DIR``: fit the hybrid model by SVI.

A thin layer over :func:`differland_bayes.bayes.fit.run_fit`: read and validate the
configuration (:mod:`differland_bayes.bayes.fitconfig`) before anything runs, apply
``--steps``, fit with a progress bar showing the running ELBO, and write the run
directory (layout: :mod:`differland_bayes.bayes.run`). JAX is imported only when the
command runs.
"""

from __future__ import annotations

import argparse
import logging
import sys

from ._argtypes import int_at_least

__all__ = ["register", "run"]

log = logging.getLogger(__name__)


_positive_int = int_at_least(1)


def run(args: argparse.Namespace) -> int:
    """Run ``differland fit``; return the exit status.

    Parameters
    ----------
    args : argparse.Namespace
        ``config`` (path or None), ``out``, ``overwrite``, ``resume``, ``steps``,
        ``no_progress`` and ``show_config``.

    Returns
    -------
    int
        0 on success (user errors raise and are reported by the command line, status 2).

    Raises
    ------
    ValueError
        For an invalid configuration (every problem listed), unusable data, missing
        ``--out`` or conflicting flags.
    FileNotFoundError
        For a missing configuration or data file.
    FileExistsError
        If the run directory exists and neither ``--overwrite`` nor ``--resume`` is given.
    """
    from ..bayes.fitconfig import FitConfig, config_to_toml, config_with, load_config

    if args.overwrite and args.resume:
        raise ValueError("--overwrite and --resume exclude each other: choose one")
    if args.config is None and not args.show_config:
        raise ValueError("the following argument is required: CONFIG.toml")
    cfg = load_config(args.config) if args.config is not None else FitConfig()
    if args.steps is not None:
        source = f"{args.config or 'defaults'} with --steps {args.steps}"
        cfg = config_with(cfg, {"svi.steps": args.steps}, source=source)
    if args.show_config:
        sys.stdout.write(config_to_toml(cfg, comments=True))
        return 0
    if args.out is None:
        raise ValueError("the following argument is required: --out RUN_DIR")

    from ..bayes.fit import run_fit

    result = run_fit(
        cfg,
        args.out,
        overwrite=args.overwrite,
        resume=args.resume,
        progress_bar=not args.no_progress and sys.stderr.isatty(),
    )
    s = result.summary
    log.info(
        "done: %d steps, final loss %.6g; results in %s",
        s["steps"],
        s["final_loss"] if s["final_loss"] is not None else float("nan"),
        result.run_dir,
    )
    return 0


def register(subparsers, formatter_class: type[argparse.HelpFormatter]) -> None:
    """Add the ``fit`` subparser.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The ``differland`` subcommand group.
    formatter_class : type of argparse.HelpFormatter
        Help formatter shared by all subcommands.
    """
    from ..cli import PROG, _describe, _examples

    p = subparsers.add_parser(
        "fit",
        help="fit the hybrid Bayesian model by SVI as a TOML configuration says",
        description=_describe(
            "Fit the hybrid model (environment -> parameter network, site residuals, "
            "process model, masked likelihoods) by stochastic variational inference. "
            "CONFIG.toml says everything: data source (synthetic, fluxval, fluxnet-sites "
            "or a canonical .nc/.zarr; relative paths against $DIFFERLAND_DATA_DIR, "
            "default ../shared/data), streams and splits, process model and free "
            "parameters, network, likelihood, priors, guide, optimiser, steps, batch size "
            "and seed. The configuration is checked against the schema before anything "
            "runs (every problem is listed with its key path; see --show-config for every "
            "key and default) and the data are validated before fitting. RUN_DIR gets "
            "config.toml (as run), data_meta.json, params.npz, losses.csv, "
            "heldout_losses.csv, summary.json and checkpoints/; it is written in a staging "
            "directory next to it and moved into place when complete. An existing "
            "RUN_DIR is refused unless --overwrite; --resume continues a run (or an "
            "interrupted fit) from its checkpoint, e.g. to more --steps."
        ),
        epilog=_examples(
            f"{PROG} fit examples/configs/synthetic.toml --out runs/synthetic",
            f"{PROG} fit examples/configs/synthetic.toml --out runs/synthetic --steps 600 "
            "--overwrite",
            "",
            "continue an interrupted fit (the same command plus --resume):",
            f"  {PROG} fit examples/configs/fluxval.toml --out runs/fluxval --resume",
            "",
            "start a configuration from the documented defaults:",
            f"  {PROG} fit --show-config > my-fit.toml",
        ),
        formatter_class=formatter_class,
    )
    p.add_argument(
        "config",
        metavar="CONFIG.toml",
        nargs="?",
        help="fit configuration (TOML); see --show-config",
    )
    p.add_argument("--out", metavar="RUN_DIR", help="run directory to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in RUN_DIR (or its interrupted fit) from its checkpoint",
    )
    p.add_argument(
        "--steps",
        type=_positive_int,
        metavar="N",
        help="total SVI steps, overriding svi.steps of the configuration",
    )
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (it is shown only when stderr is a terminal anyway)",
    )
    p.add_argument(
        "--show-config",
        action="store_true",
        help="print the configuration with every key, its default and documentation, "
        "and exit (without CONFIG.toml: the defaults)",
    )
    p.set_defaults(func=run)
