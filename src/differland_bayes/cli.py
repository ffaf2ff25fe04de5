"""The ``differland`` command line.

Subcommands: ``info`` (models, options, parameter tables, outputs) and ``simulate`` (run
a process model on a forcing file or the embedded default site) live here; ``validate``,
``synthesize``, ``fit``, ``predict``, ``report``, ``compare`` and ``demo`` (synthesize,
fit, predict and report a synthetic world with a known truth) in
:mod:`differland_bayes.commands`. Mistakes in the inputs end with one line
``differland: error: ...`` on stderr and exit status 2; progress goes to the log
(INFO by default, ``-v`` for DEBUG, ``-q`` for warnings only).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # heavy imports are deferred so that ``--help`` stays fast
    import numpy as np
    import pandas as pd
    import xarray as xr

    from .process.base import AbstractDalec

__all__ = ["main"]

log = logging.getLogger(__name__)

PROG = "differland"
EXIT_OK = 0
EXIT_USAGE = 2  #: exit status of user mistakes (as argparse uses for bad arguments)
SIMULATION_FILE = "simulation.nc"
FIGURE_FILE = "simulation.png"
PACKAGE_LOGGER = "differland_bayes"
LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"
LEVEL_STEP = logging.INFO - logging.DEBUG  #: one -v or -q moves the level by this much
DESCRIPTION_WIDTH = 88  #: characters per line of the help descriptions


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keep the line breaks of descriptions and examples; show meaningful defaults."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help
        default = action.default
        if text and default not in (None, False, 0, argparse.SUPPRESS):
            text += " (default: %(default)s)"
        return text


def _user_error_types() -> tuple[type[BaseException], ...]:
    from .forcing import ForcingError
    from .units import UnitError

    return (ForcingError, UnitError, ValueError, KeyError, FileExistsError, FileNotFoundError)


def _one_line(exc: BaseException) -> str:
    """Render an exception message on one line (multi-line lists joined by '; ')."""
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    if isinstance(exc, FileNotFoundError) and exc.filename and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}"
    lines = [ln.strip().removeprefix("- ").strip() for ln in str(text).splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines:
        return type(exc).__name__
    head, rest = lines[0], lines[1:]
    return head + (" " + "; ".join(rest) if rest else "")


def _configure_logging(verbose: int, quiet: int) -> Callable[[], None]:
    """Send the package's log records to stderr at the requested level.

    Returns a function that restores the previous logger state (so that calling
    :func:`main` in-process leaves logging as it found it).
    """
    level = logging.INFO + LEVEL_STEP * (quiet - verbose)
    level = min(max(level, logging.DEBUG), logging.CRITICAL)
    logger = logging.getLogger(PACKAGE_LOGGER)
    previous_level = logger.level
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger.addHandler(handler)
    logger.setLevel(level)

    def restore() -> None:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)

    return restore


def _write(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _format_frame(frame: pd.DataFrame) -> str:
    """Render a table as plain text: numbers right-aligned (4 significant digits), text left."""
    import pandas as pd

    columns = []
    for name in frame.columns:
        values = frame[name]
        numeric = pd.api.types.is_numeric_dtype(values)
        cells = [f"{v:.4g}" if numeric else str(v) for v in values]
        width = max(len(name), *(len(c) for c in cells))
        align = str.rjust if numeric else str.ljust
        columns.append([align(name, width)] + [align(c, width) for c in cells])
    return "\n".join("  ".join(row).rstrip() for row in zip(*columns, strict=True))


# -- info ---------------------------------------------------------------------------------
def _cmd_info(args: argparse.Namespace) -> int:
    from ._version import __version__
    from .process.base import MODES
    from .process.metadata import output_info
    from .process.registry import MODELS, WATER_STRESS

    names = [args.model] if args.model else list(MODELS)
    _write(f"differland_bayes {__version__}")
    _write(f"modes: {', '.join(MODES)}")
    for name in names:
        model_cls = MODELS[name]
        options = ", ".join(f"{k} ({v.__name__})" for k, v in WATER_STRESS[name].items())
        _write()
        _write(f"== {name} ==")
        _write(f"water-stress options: {options}")
        _write(f"parameters ({len(model_cls.table)}; physical values, bounds inclusive):")
        _write(_format_frame(model_cls.table.to_dataframe()))
        _write(f"outputs ({len(model_cls.Outputs._fields)}):")
        info = output_info(name)
        width = max(len(k) for k in info)
        units_width = max(len(u) for u, _ in info.values())
        for field, (units, long_name) in info.items():
            _write(f"  {field:<{width}}  {units:<{units_width}}  {long_name}")
    return EXIT_OK


# -- simulate ----------------------------------------------------------------------------
def _output_paths(out_dir: Path, overwrite: bool) -> tuple[Path, Path]:
    """Paths of the simulation outputs; refuse early if they exist and may not be replaced."""
    from .io.atomic import check_can_write

    paths = (out_dir / SIMULATION_FILE, out_dir / FIGURE_FILE)
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"--out {out_dir} exists and is not a directory")
    if out_dir.is_dir():
        for path in paths:
            check_can_write(path, overwrite=overwrite)
    return paths


def _is_daily(ds: xr.Dataset) -> bool:
    import numpy as np

    if "time" not in ds.coords or ds.sizes.get("time", 0) < 2:
        return False
    time = ds["time"].values
    if not np.issubdtype(time.dtype, np.datetime64):
        return False
    return bool(np.all(np.diff(time) == np.timedelta64(1, "D")))


def _load_forcing(path: str | None, model: AbstractDalec) -> xr.Dataset:
    """Read the forcing from a netCDF file, or build the embedded default site's."""
    import xarray as xr

    from .defaults import default_forcing_dataset
    from .forcing import monthly_means

    if path is None:
        log.info("forcing: embedded default site (synthetic temperate forest, 45 N)")
        return default_forcing_dataset(model.name)
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"forcing file not found: {file}")
    try:
        with xr.open_dataset(file) as raw:
            ds = raw.load()
    except (OSError, ValueError) as e:
        reason = _one_line(e).split(". ")[0]  # xarray's first sentence says it all
        raise ValueError(f"cannot read forcing file {file}: {reason}") from e
    log.info("forcing: %s (%d steps)", file, ds.sizes.get("time", 0))
    if model.name == "dalec993" and _is_daily(ds):
        log.info("forcing is daily; aggregating to calendar-month means for dalec993")
        ds = monthly_means(ds)
    return ds


def _read_params(path: str | None, model: AbstractDalec) -> np.ndarray:
    """Default parameters with the overrides of a ``name,value`` CSV file."""
    import numpy as np
    import pandas as pd

    from .defaults import default_theta

    theta = default_theta(model)
    if path is None:
        return theta
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"parameter file not found: {file}")
    try:
        table = pd.read_csv(file, comment="#", skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read parameter file {file}: {_one_line(e)}") from e
    missing = [c for c in ("name", "value") if c not in table.columns]
    if missing:
        raise ValueError(
            f"parameter file {file}: needs columns 'name' and 'value', missing {missing} "
            f"(found {list(table.columns)})"
        )
    names = table["name"].astype(str).str.strip()
    unknown = sorted(set(names) - set(model.table.names))
    if unknown:
        raise ValueError(
            f"parameter file {file}: unknown parameter(s) {unknown} for {model.name}; "
            f"see 'differland info --model {model.name}'"
        )
    dupes = sorted(set(names[names.duplicated()]))
    if dupes:
        raise ValueError(f"parameter file {file}: parameter(s) given twice: {dupes}")
    values = pd.to_numeric(table["value"], errors="coerce")
    bad = list(names[values.isna()])
    if bad:
        raise ValueError(f"parameter file {file}: non-numeric value for {bad}")
    for name, value in zip(names, values, strict=True):
        theta[model.table.names.index(name)] = float(value)
    log.info("parameters: defaults with %d value(s) from %s", len(names), file)
    return np.asarray(theta)


def _run_simulation(
    *,
    model_name: str,
    water_stress: str,
    mode: str,
    forcing: str | None,
    params: str | None,
    out: str,
    overwrite: bool,
) -> xr.Dataset:
    """Body of ``simulate``: simulate, write netCDF and figure."""
    from .io.atomic import write_netcdf_atomic
    from .plotting import plot_simulation
    from .process.registry import get_model
    from .simulation import simulate_dataset

    out_dir = Path(out)
    nc_path, png_path = _output_paths(out_dir, overwrite)  # fail before any work
    model = get_model(model_name, water_stress=water_stress, mode=mode)
    forcing_ds = _load_forcing(forcing, model)
    theta = _read_params(params, model)
    ds = simulate_dataset(model, forcing_ds, theta)
    ds.attrs["forcing_source"] = str(forcing) if forcing else "embedded default site"
    out_dir.mkdir(parents=True, exist_ok=True)
    write_netcdf_atomic(ds, nc_path, overwrite=overwrite)
    plot_simulation(ds, png_path, overwrite=overwrite)
    _log_summary(ds)
    return ds


def _log_summary(ds: xr.Dataset) -> None:
    """One log line with the headline numbers of a simulation."""
    log.info(
        "summary: %d steps; mean GPP %.2f %s, mean NEE %.2f %s, LAI %.2f-%.2f %s",
        ds.sizes["time"],
        float(ds["gpp"].mean()),
        ds["gpp"].attrs["units"],
        float(ds["nee"].mean()),
        ds["nee"].attrs["units"],
        float(ds["lai"].min()),
        float(ds["lai"].max()),
        ds["lai"].attrs["units"],
    )


def _cmd_simulate(args: argparse.Namespace) -> int:
    _run_simulation(
        model_name=args.model,
        water_stress=args.water_stress,
        mode=args.mode,
        forcing=args.forcing,
        params=args.params,
        out=args.out,
        overwrite=args.overwrite,
    )
    return EXIT_OK


# -- parser -------------------------------------------------------------------------------
def _describe(text: str) -> str:
    return textwrap.fill(text, width=DESCRIPTION_WIDTH)


def _examples(*lines: str) -> str:
    return "Examples:\n" + textwrap.indent("\n".join(lines), "  ")


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of ``differland`` (exposed for documentation and tests)."""
    # Literal choices so that building the parser needs no JAX import.
    model_names = ("dalec993", "dalec990")
    modes = ("faithful", "conserving")

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Differentiable DALEC land-carbon models with Bayesian hybrid fits: inspect, "
        "simulate, synthesize, validate, fit, predict, report, compare, demo.",
        epilog=_examples(
            f"{PROG} info --model dalec993",
            f"{PROG} simulate --out runs/default",
            f"{PROG} fit examples/configs/synthetic.toml --out runs/synthetic",
            f"{PROG} report runs/synthetic",
            f"{PROG} demo --out demo-output",
            "",
            f"'{PROG} COMMAND --help' explains each command, with examples.",
        ),
        formatter_class=_Formatter,
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (repeatable)"
    )
    parser.add_argument(
        "-q", "--quiet", action="count", default=0, help="less log output (repeatable)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    info = sub.add_parser(
        "info",
        help="list models, options, parameter tables and outputs",
        description=_describe(
            "List the process models, their water-stress options and modes, the "
            "parameter tables (bounds and units) and the outputs with units."
        ),
        epilog=_examples(f"{PROG} info", f"{PROG} info --model dalec990"),
        formatter_class=_Formatter,
    )
    info.add_argument("--model", choices=model_names, help="show only this model")
    info.set_defaults(func=_cmd_info)

    sim = sub.add_parser(
        "simulate",
        help="run a process model and write simulation.nc and simulation.png",
        description=_describe(
            "Run a process model on a forcing file (or the embedded default site) and "
            "write OUT/simulation.nc and OUT/simulation.png. Daily forcing is aggregated "
            "to monthly means for the monthly dalec993."
        ),
        epilog=_examples(
            f"{PROG} simulate --out runs/default",
            f"{PROG} simulate --model dalec990 --forcing site.nc --params params.csv "
            "--out runs/site --overwrite",
            "",
            "params.csv has columns name,value in physical units, e.g.",
            "  name,value",
            "  canopy_efficiency,25",
            "  Cwood,8000",
        ),
        formatter_class=_Formatter,
    )
    sim.add_argument("--model", choices=model_names, default="dalec993", help="process model")
    sim.add_argument(
        "--water-stress",
        default="default",
        help="water-stress option: default, or nothing (dalec993) / baseline (dalec990)",
    )
    sim.add_argument("--mode", choices=modes, default="faithful", help="numerics")
    sim.add_argument(
        "--forcing",
        metavar="PATH.nc",
        help="forcing netCDF with t_min, t_max, swrad, co2, vpd, precip (units attributes), "
        "a datetime time and lat; default: the embedded default site",
    )
    sim.add_argument(
        "--params",
        metavar="PATH.csv",
        help="CSV with columns name,value overriding the default parameters",
    )
    _add_output_arguments(sim)
    sim.set_defaults(func=_cmd_simulate)

    from . import commands

    for name in commands.COMMAND_MODULES:
        importlib.import_module(f".commands.{name}", __package__).register(sub, _Formatter)
    return parser


def _add_output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", metavar="DIR", required=True, help="output directory")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``differland`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns
    -------
    int
        Exit status: 0 on success, 2 for a usage or input error (reported on one line).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, or argparse's own usage errors
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    restore_logging = _configure_logging(args.verbose, args.quiet)
    try:
        return args.func(args)
    except BrokenPipeError:  # e.g. ``differland info | head``: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except _user_error_types() as e:
        log.debug("details of the error below", exc_info=True)
        sys.stderr.write(f"{PROG}: error: {_one_line(e)}\n")
        return EXIT_USAGE
    finally:
        restore_logging()


if __name__ == "__main__":
    raise SystemExit(main())
