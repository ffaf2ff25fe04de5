"""Generate ``docs/parameters.md`` and ``docs/configuration.md`` from the code.

``docs/parameters.md``: for each process model the parameter table
(``ParamTable.to_markdown()``), the forcing fields and the output fields with their units.
Units and meanings of forcing and output fields come from
``differland_bayes.process.metadata`` (``FORCING_INFO`` and ``OUTPUT_INFO``, keyed by
model name then field name, values ``(units, long_name)``) when that module exists;
otherwise only the field names are listed.

``docs/configuration.md``: every section and key of a ``differland fit`` configuration
with its TOML type, default, allowed values and meaning, from the schema
(``differland_bayes.bayes.fitconfig_schema``: one dataclass per section, each field with
``metadata["doc"]`` and an optional ``metadata["check"]``, whose "expected ..." message
describes the allowed values).

Usage::

    python scripts/generate_docs.py            # (re)write both pages
    python scripts/generate_docs.py --check    # exit 1 if either page is stale
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import importlib
import importlib.util
import json
import math
import re
import sys
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = REPO / "docs" / "parameters.md"
DEFAULT_CONFIGURATION_OUTPUT = REPO / "docs" / "configuration.md"
COMMAND = "python scripts/generate_docs.py"
METADATA_MODULE = "differland_bayes.process.metadata"


def _header(source: str) -> str:
    return f"""\
<!--
  GENERATED FILE - do not edit by hand.
  Generated from {source} by
      {COMMAND}
  `{COMMAND} --check` (run by tests/test_docs.py) fails when this file is stale.
-->
"""


HEADER = _header("the parameter tables and named structures of differland_bayes")

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


# --------------------------------------------------------------------------- configuration

CONFIGURATION_INTRO = """\
# Fit configuration reference

`differland fit CONFIG.toml --out RUN_DIR` reads everything it does from one TOML file.
This page lists every section and key with its type, default and allowed values. It is
generated from the schema, `differland_bayes.bayes.fitconfig_schema` (one dataclass per
section). The same information, as a commented TOML file with every default, comes from
`differland fit --show-config`. Complete examples are in `examples/configs/` (see the
[user guide](user-guide.md#differland-fit)).

* Every key is optional; a missing key takes the default listed here.
* TOML has no null, so "not set" is written `0` or `[]` where a key allows it (for
  example `svi.batch_size = 0`: every site in every step; `data.streams = []`: every
  stream present that the model predicts).
* The whole file is checked before anything runs, and **every** problem is reported at
  once with its key path: unknown keys (with a "did you mean" hint), wrong TOML types and
  values outside the allowed values below. A few checks involve several keys or the
  process model: `model.water_stress` must be an option of `model.process`; the names in
  `model.free_parameters`, `model.fixed_parameters` and
  `data.synthetic.free_parameters` must be parameters of that model (`differland info
  --model NAME` lists them) and fixed values must lie within their bounds; a parameter
  cannot be both free and fixed; `svi.warmup` must be smaller than `svi.steps` unless
  the schedule is `"constant"`; `svi.rank` is only allowed with the `lowrank` and
  `site_mvn` guides; `data.source` must be a named source or a `.nc` / `.nc4` / `.zarr`
  path.
* The run directory keeps the configuration as run, with every default filled in, as
  `RUN_DIR/config.toml`.
"""

_TOML_TYPE = {bool: "boolean", int: "integer", float: "float", str: "string"}
#: values given to a field's check to make it describe what it accepts ("expected ...")
_PROBES: tuple[Any, ...] = ("\x00", -math.inf, math.inf, ["\x00"], [-math.inf], ["\x00", "\x00"])


def _toml_type(tp: Any) -> str:
    """The TOML type of a schema field type."""
    origin = typing.get_origin(tp)
    if origin is tuple:
        return f"array of {_TOML_TYPE[typing.get_args(tp)[0]]}s"
    if origin is Mapping:
        return f"table (name = {_TOML_TYPE[typing.get_args(tp)[1]]})"
    return _TOML_TYPE[tp]


def _toml_value(value: Any) -> str:
    """A default value as TOML text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def _allowed(check: Any) -> str:
    """Describe the values a field's check accepts, from its own "expected ..." messages."""
    if check is None:
        return ""
    found: list[str] = []
    for probe in _PROBES:
        try:
            msg = check(probe)
        except (TypeError, ValueError):
            continue
        each = isinstance(msg, tuple)  # (item path, message, offending item)
        if each:
            msg = msg[1]
        if msg:
            text = str(msg).removeprefix("expected ").split(", found")[0]
            text = f"each {text}" if each else text
            if text not in found:
                found.append(text)
    return "; ".join(found)


def _prose(text: str) -> str:
    """Doc text of the schema as Markdown: code spans for names the renderer would eat."""
    text = text.replace("``", "`")
    # `<stream>_unc` would be read as an HTML tag, `$VAR` as the start of a formula
    text = re.sub(r"(?<!`)(\$[A-Za-z_]+|\S*<[a-z_]+>\S*)", r"`\1`", text)
    return _escape(text)


def _section_rows(cls: type, name: str, out: list[tuple[str, type]]) -> None:
    """Collect ``(name, section class)`` in the order ``config_to_toml`` writes them."""
    out.append((name, cls))
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            _section_rows(hints[f.name], f"{name}.{f.name}", out)


def generate_configuration() -> str:
    """Return the Markdown text of ``docs/configuration.md``."""
    from differland_bayes.bayes.fitconfig_schema import FitConfig

    hints = typing.get_type_hints(FitConfig)
    sections: list[tuple[str, type]] = []
    for f in dataclasses.fields(FitConfig):
        _section_rows(hints[f.name], f.name, sections)

    parts = [_header("the schema of differland fit configurations"), CONFIGURATION_INTRO]
    parts.append(
        "Sections: " + ", ".join(f"[`[{n}]`](#{n.replace('.', '')})" for n, _ in sections) + ".\n"
    )
    for name, cls in sections:
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        summary = doc.split(": ", 1)[-1]
        summary = _prose(summary[:1].upper() + summary[1:])
        defaults = cls()
        field_hints = typing.get_type_hints(cls)
        lines = [
            f"## [{name}]\n",
            f"{summary}\n",
            "| key | type | default | allowed values | meaning |",
            "|---|---|---|---|---|",
        ]
        for f in dataclasses.fields(cls):
            tp = field_hints[f.name]
            if dataclasses.is_dataclass(tp):
                lines.append(
                    f"| `{f.name}` | section | | | see [`[{name}.{f.name}]`]"
                    f"(#{name.replace('.', '')}{f.name}) |"
                )
                continue
            allowed = _escape(_allowed(f.metadata.get("check")))
            default = _escape(_toml_value(getattr(defaults, f.name)))
            meaning = _prose(f.metadata.get("doc", ""))
            lines.append(f"| `{f.name}` | {_toml_type(tp)} | `{default}` | {allowed} | {meaning} |")
        parts.append("\n".join(lines) + "\n")
    text = "\n".join(parts)
    return text.rstrip("\n") + "\n"


# --------------------------------------------------------------------------- command line


def _check(out: Path, text: str) -> bool:
    """Return whether ``out`` holds ``text``; say why not on stderr."""
    if not out.exists():
        print(f"generate_docs: {out} does not exist; run `{COMMAND}` to create it", file=sys.stderr)
        return False
    current = out.read_text(encoding="utf-8")
    if current == text:
        print(f"generate_docs: {out} is up to date")
        return True
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
        f"generate_docs: {out} is stale; run `{COMMAND}` and commit the result.\n{shown}{more}",
        file=sys.stderr,
    )
    return False


def main(argv: list[str] | None = None) -> int:
    """Write or check the generated pages; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="do not write; exit 1 if a page differs from what would be generated",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help=f"parameter page to write or check (default: {DEFAULT_OUTPUT.relative_to(REPO)})",
    )
    parser.add_argument(
        "--configuration-output",
        type=Path,
        default=DEFAULT_CONFIGURATION_OUTPUT,
        help="configuration page to write or check "
        f"(default: {DEFAULT_CONFIGURATION_OUTPUT.relative_to(REPO)})",
    )
    args = parser.parse_args(argv)
    text, warnings = generate()
    for w in warnings:
        print(f"generate_docs: warning: {w}", file=sys.stderr)
    pages = [(args.output, text), (args.configuration_output, generate_configuration())]
    if args.check:
        results = [_check(out, page) for out, page in pages]
        return 0 if all(results) else 1
    for out, page in pages:
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", encoding="utf-8", newline="\n") as fh:
            fh.write(page)
        print(f"generate_docs: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
