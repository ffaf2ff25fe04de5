"""``differland validate PATH``: check a canonical dataset and list every problem.

Prints one line per problem (``error: <variable> [site=..., time=...]: expected ...,
found ...``) and a summary line on stdout. Exit status 0 when the dataset can be used
(notices allowed), 1 when it has errors, 2 for usage errors such as a missing file.
"""

from __future__ import annotations

import argparse
import sys

from ..cli import PROG, _describe, _examples

EXIT_INVALID = 1  #: the dataset has errors


def run(args: argparse.Namespace) -> int:
    """Validate ``args.path`` and print the report; return the exit status.

    Parameters
    ----------
    args : argparse.Namespace
        ``path`` (str) and ``quiet_report`` (bool: leave out the notices).

    Returns
    -------
    int
        0 if the dataset can be used, 1 if it has errors.

    Raises
    ------
    FileNotFoundError
        If the path does not exist (the command line reports it on one line, status 2).
    ValueError
        If the path is not a readable ``.nc`` or ``.zarr`` dataset (status 2).
    """
    from ..validate import validate_dataset  # deferred: keeps ``differland --help`` fast

    report = validate_dataset(args.path)
    lines = report.lines(notices=not args.quiet_report)
    if not args.quiet_report:
        lines.insert(0, report.header())
    lines.append(report.summary())
    sys.stdout.write("\n".join(lines) + "\n")
    return 0 if report.ok else EXIT_INVALID


def register(subparsers, formatter_class: type[argparse.HelpFormatter]) -> None:
    """Add the ``validate`` subparser.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The ``differland`` subcommand group.
    formatter_class : type of argparse.HelpFormatter
        Help formatter shared by all subcommands.
    """
    p = subparsers.add_parser(
        "validate",
        help="check a canonical multi-site dataset and list every problem",
        description=_describe(
            "Check a dataset in the canonical multi-site layout (docs/data-format.md) "
            "before any work: coordinates (site, time, lat), the time axis (daily or "
            "calendar-monthly, increasing, no duplicates), forcing variables (present, "
            "finite, physically possible, known units), observation streams with their "
            "masks and uncertainties, the env predictors and the splits; with "
            "site_time_valid (sites with different records on one time axis) forcing "
            "may be NaN and masks must be False outside each site's record. Prints one line "
            "per problem and a summary. Errors block use; notices (such as forcing in K "
            "or W m-2 that will be converted) do not. Exit status: 0 usable, 1 errors, "
            "2 usage error (e.g. missing file). The file is only read, never changed."
        ),
        epilog=_examples(
            f"{PROG} validate sites.nc",
            f"{PROG} validate sites.zarr --quiet",
            "",
            "output lines look like",
            "  error: precip [site=US-Var, time=2003-07-01]: expected values >= 0 mm d-1, "
            "found -0.5 mm d-1",
            "  notice: t_min: expected units 'degC', found 'K' (will be converted to 'degC')",
        ),
        formatter_class=formatter_class,
    )
    p.add_argument("path", metavar="PATH", help="dataset to check: a .nc file or a .zarr store")
    p.add_argument(
        "--quiet",
        dest="quiet_report",
        action="store_true",
        help="print only the errors and the summary line, not the notices",
    )
    p.set_defaults(func=run)
