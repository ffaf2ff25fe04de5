"""``differland compare RUN_DIR RUN_DIR ... --out DIR``: rank runs by ELPD.

A thin layer over :func:`differland_bayes.analysis.compare.compare_runs`: each run's
DataTree is read from ``RUN_DIR/report/datatree.nc`` when it matches the settings (see
``differland report``), else built in memory; ``DIR/compare.csv`` and
``DIR/compare.png`` are written atomically.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ._argtypes import int_at_least

__all__ = ["COMPARE_CSV", "COMPARE_PNG", "register", "run"]

log = logging.getLogger(__name__)

COMPARE_CSV = "compare.csv"
COMPARE_PNG = "compare.png"
_positive_int = int_at_least(1)
_seed = int_at_least(0)


def _names(run_dirs: list[Path]) -> list[str]:
    """Directory names, or the paths as given where names repeat."""
    names = [p.name or str(p) for p in run_dirs]
    if len(set(names)) < len(names):
        names = [str(p) for p in run_dirs]
    return names


def run(args: argparse.Namespace) -> int:
    """Run ``differland compare``; return the exit status.

    Parameters
    ----------
    args : argparse.Namespace
        ``run_dirs``, ``out``, ``samples``, ``seed``, ``overwrite`` and ``no_progress``.

    Returns
    -------
    int
        0 on success (user errors raise and are reported by the command line, status 2).

    Raises
    ------
    FileNotFoundError
        For a missing run directory.
    FileExistsError
        If the outputs exist and ``--overwrite`` is not given.
    ValueError
        For fewer than two runs, or runs fitted on different observations.
    """
    import matplotlib

    matplotlib.use("Agg")
    from ..io.atomic import atomic_path, check_can_write

    run_dirs = [Path(p) for p in args.run_dirs]
    if len(run_dirs) < 2:
        raise ValueError(f"expected at least 2 run directories, found {len(run_dirs)}")
    if len(set(map(Path.resolve, run_dirs))) < len(run_dirs):
        raise ValueError("the same run directory is given more than once")
    for p in run_dirs:
        if not p.is_dir():
            raise FileNotFoundError(f"run directory not found: {p}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} exists and is not a directory")
    if out.is_dir():
        for name in (COMPARE_CSV, COMPARE_PNG):
            check_can_write(out / name, overwrite=args.overwrite)

    from ..analysis.compare import compare_runs, write_table
    from ..analysis.plots import figure_png, plot_elpd_comparison
    from ..analysis.report import DATATREE_FILE, datatree_for_run

    trees = {}
    for name, p in zip(_names(run_dirs), run_dirs, strict=True):
        trees[name] = datatree_for_run(
            p, p / "report" / DATATREE_FILE, num_samples=args.samples, seed=args.seed,
            store=False, progress_bar=False if args.no_progress else None,
        )  # fmt: skip
    table = compare_runs(trees)
    out.mkdir(parents=True, exist_ok=True)
    write_table(table, out / COMPARE_CSV, overwrite=args.overwrite)
    png = figure_png(plot_elpd_comparison(table))
    with atomic_path(out / COMPARE_PNG, overwrite=args.overwrite) as tmp:
        tmp.write_bytes(png)
    best = table.index[0]
    log.info("done: best run %s (elpd %.1f +- %.1f); %s", best, table.loc[best, "elpd"],
             table.loc[best, "se"], out / COMPARE_CSV)  # fmt: skip
    return 0


def register(subparsers, formatter_class: type[argparse.HelpFormatter]) -> None:
    """Add the ``compare`` subparser.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The ``differland`` subcommand group.
    formatter_class : type of argparse.HelpFormatter
        Help formatter shared by all subcommands.
    """
    from ..cli import PROG, _describe, _examples

    p = subparsers.add_parser(
        "compare",
        help="rank fitted runs by expected log predictive density (PSIS-LOO)",
        description=_describe(
            "Compare runs fitted on the same observations by PSIS-LOO ELPD (all streams "
            "together) with standard errors of the ELPDs and of their differences, "
            "stacking weights and Pareto-k diagnostics, plus each run's log predictive "
            "density of the observations it did not fit. Writes DIR/compare.csv and "
            "DIR/compare.png; existing files are refused unless --overwrite."
        ),
        epilog=_examples(f"{PROG} compare runs/normal runs/lowrank --out reports/compare"),
        formatter_class=formatter_class,
    )
    p.add_argument("run_dirs", metavar="RUN_DIR", nargs="+", help="run directories (>= 2)")
    p.add_argument("--out", metavar="DIR", required=True, help="output directory")
    p.add_argument("--samples", type=_positive_int, default=200, metavar="N", help="draws")
    p.add_argument("--seed", type=_seed, default=0, metavar="S", help="random seed (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)
