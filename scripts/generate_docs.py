"""Generate ``docs/parameters.md`` from the code.

For each process model the page lists the parameter table (``ParamTable.to_markdown()``),
the forcing fields and the output fields with their units. Units and meanings of forcing
and output fields come from ``differland_bayes.process.metadata`` (``FORCING_INFO`` and
``OUTPUT_INFO``, keyed by model name then field name, values ``(units, long_name)``)
when that module exists; otherwise only the field names are listed.

Usage::

    python scripts/generate_docs.py            # (re)write docs/parameters.md
    python scripts/generate_docs.py --check    # exit 1 if docs/parameters.md is stale
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = REPO / "docs" / "parameters.md"
COMMAND = "python scripts/generate_docs.py"
METADATA_MODULE = "differland_bayes.process.metadata"

HEADER = f"""\
<!--
  GENERATED FILE - do not edit by hand.
  Generated from the parameter tables and named structures of differland_bayes by
      {COMMAND}
  `{COMMAND} --check` (run by tests/test_docs.py) fails when this file is stale.
-->
"""

INTRO = """\
# Parameters, forcing and outputs

This page is generated from the code: the parameter tables
(`differland_bayes.process.DALEC993_TABLE`, `DALEC990_TABLE`) and the NamedTuples of
forcing and outputs of each model. The equations that use these quantities are in
[model.md](model.md).

Columns of the parameter tables:

* `#`: position in the model's physical parameter vector (process parameters, then
  phenology parameters where the model has a separate group, then initial pools).
* `group`: `process`, `phenology` or `initial_pool`; the published global model predicts
  each group with its own network head.
* `lower`, `upper`: bounds of the physical value. The bounded transform
  ([model.md, Bounded parameter transform](model.md#bounded-parameter-transform)) maps
  the real line onto this interval. The bounds of the initial pools are also the hard
  clipping limits of the pools inside each step.
* `z=0 value`: physical value for an unconstrained value of 0 (the geometric mean of the
  bounds).
* `units`: `1` means dimensionless; `d-1` rates are daily fractions.
"""


def _escape(text: Any) -> str:
    """Make ``text`` safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _load_metadata():
    """Return the metadata module, or None when it does not exist (yet).

    Only a missing module is tolerated; an error raised while importing an existing
    module propagates.
    """
    try:
        spec = importlib.util.find_spec(METADATA_MODULE)
    except ModuleNotFoundError:
        spec = None
    if spec is None:
        return None
    return importlib.import_module(METADATA_MODULE)


def _unpack(info: Any) -> tuple[str, str]:
    """Read ``(units, long_name)`` from a metadata entry (tuple, mapping or object)."""
    if isinstance(info, tuple | list):
        units, long_name = (list(info) + ["", ""])[:2]
    elif isinstance(info, dict):
        units = info.get("units", "")
        long_name = info.get("long_name", info.get("description", ""))
    else:
        units = getattr(info, "units", "")
        long_name = getattr(info, "long_name", getattr(info, "description", ""))
    return str(units), str(long_name)


def _field_table(
    fields: tuple[str, ...], info: dict[str, Any] | None, what: str, model: str
) -> tuple[str, list[str]]:
    """Render the fields of a NamedTuple as a table; return it and any missing names."""
    missing: list[str] = []
    if info is None:
        lines = ["| # | field |", "|---|---|"]
        lines += [f"| {i} | `{name}` |" for i, name in enumerate(fields)]
        return "\n".join(lines), missing
    lines = ["| # | field | units | meaning |", "|---|---|---|---|"]
    for i, name in enumerate(fields):
        if name in info:
            units, long_name = _unpack(info[name])
        else:
            missing.append(f"{model} {what} field {name!r}")
            units, long_name = "?", "(no metadata)"
        lines.append(f"| {i} | `{name}` | {_escape(units)} | {_escape(long_name)} |")
    return "\n".join(lines), missing


def _model_info(table_info: Any, model: str) -> dict[str, Any] | None:
    if table_info is None:
        return None
    if model not in table_info:
        raise KeyError(
            f"{METADATA_MODULE} has no entry for model {model!r}; found {sorted(table_info)}"
        )
    return table_info[model]


def generate() -> tuple[str, list[str]]:
    """Return the Markdown text of ``docs/parameters.md`` and a list of warnings."""
    from differland_bayes.process import DALEC990_TABLE, DALEC993_TABLE, Dalec990, Dalec993

    models = [
        (
            "DALEC993",
            "the monthly global model (single water bucket, fire, SIF and VOD operators)",
            DALEC993_TABLE,
            Dalec993,
        ),
        (
            "DALEC990",
            "the daily site model (plant-available and plant-unavailable water, no fire)",
            DALEC990_TABLE,
            Dalec990,
        ),
    ]
    metadata = _load_metadata()
    forcing_info = getattr(metadata, "FORCING_INFO", None) if metadata else None
    output_info = getattr(metadata, "OUTPUT_INFO", None) if metadata else None
    warnings: list[str] = []
    if metadata is None:
        warnings.append(
            f"{METADATA_MODULE} not found: forcing and output sections list field names only"
        )

    parts = [HEADER, INTRO]
    for title, blurb, table, cls in models:
        if cls.table is not table:
            raise RuntimeError(f"{cls.__name__}.table is not {title}_TABLE")
        counts = ", ".join(f"{len(table.group(g))} {g}" for g in table.groups)
        parts.append(f"## {title}\n\n`{cls.__name__}` (model name `{cls.name}`): {blurb}.\n")
        parts.append(
            f"### {title} parameters\n\n{len(table)} entries ({counts}).\n\n{table.to_markdown()}\n"
        )
        for what, nt, info_all in (
            ("forcing", cls.Forcing, forcing_info),
            ("output", cls.Outputs, output_info),
        ):
            info = _model_info(info_all, cls.name)
            rendered, missing = _field_table(tuple(nt._fields), info, what, cls.name)
            warnings += [f"no metadata for {m}" for m in missing]
            if what == "forcing":
                lead = (
                    f"`{nt.__name__}`: {len(nt._fields)} fields, each with a time axis, in the "
                    "column order of the published forcing matrix."
                )
            else:
                lead = (
                    f"`{nt.__name__}`: {len(nt._fields)} fields per step. Fluxes are daily "
                    "rates averaged over the step; `next_*` pools are end-of-step values; "
                    "`lai` is the start-of-step value."
                )
            if info is None:
                lead += (
                    f" Units and meanings will be listed here once `{METADATA_MODULE}` "
                    "exists; until then see the docstring of the NamedTuple."
                )
            heading = "forcing" if what == "forcing" else "outputs"
            parts.append(f"### {title} {heading}\n\n{lead}\n\n{rendered}\n")
    text = "\n".join(parts)
    return text.rstrip("\n") + "\n", warnings


def main(argv: list[str] | None = None) -> int:
    """Write or check ``docs/parameters.md``; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="do not write; exit 1 if the file differs from what would be generated",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help=f"file to write or check (default: {DEFAULT_OUTPUT.relative_to(REPO)})",
    )
    args = parser.parse_args(argv)
    text, warnings = generate()
    for w in warnings:
        print(f"generate_docs: warning: {w}", file=sys.stderr)
    out: Path = args.output
    if args.check:
        if not out.exists():
            print(
                f"generate_docs: {out} does not exist; run `{COMMAND}` to create it",
                file=sys.stderr,
            )
            return 1
        current = out.read_text(encoding="utf-8")
        if current != text:
            diff = list(
                difflib.unified_diff(
                    current.splitlines(),
                    text.splitlines(),
                    fromfile=f"{out} (on disk)",
                    tofile=f"{out} (generated)",
                    lineterm="",
                )
            )
            shown = "\n".join(diff[:60])
            more = f"\n... ({len(diff) - 60} more diff lines)" if len(diff) > 60 else ""
            print(
                f"generate_docs: {out} is stale; run `{COMMAND}` and commit the result.\n"
                f"{shown}{more}",
                file=sys.stderr,
            )
            return 1
        print(f"generate_docs: {out} is up to date")
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)
    print(f"generate_docs: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
