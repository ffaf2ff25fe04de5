"""Writing ``differland fit`` configurations: as plain dicts and as TOML text."""

from __future__ import annotations

import dataclasses
import json
import re
import textwrap
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from .fitconfig_schema import FitConfig

__all__ = ["config_to_dict", "config_to_toml"]


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Return a configuration (or one section) as plain nested dicts, lists and scalars."""
    out: dict[str, Any] = {}
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        out[f.name] = config_to_dict(value) if dataclasses.is_dataclass(value) else _plain(value)
    return out


_COMMENT_WIDTH = 88
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k: str) -> str:
    return k if _BARE_KEY.match(k) else json.dumps(k)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, tuple | list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        if not v:
            return "{}"
        return "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _write_section(section: Any, name: str, lines: list[str], comments: bool) -> None:
    if lines:
        lines.append("")
    if comments and section.__doc__:
        summary = section.__doc__.strip().splitlines()[0].split(": ", 1)[-1]
        lines.append(f"# {summary}")
    lines.append(f"[{name}]")
    subsections = []
    for f in fields(section):
        value = getattr(section, f.name)
        if dataclasses.is_dataclass(value):
            subsections.append((value, f"{name}.{f.name}"))
            continue
        if comments and f.metadata.get("doc"):
            lines += textwrap.wrap(
                f.metadata["doc"], _COMMENT_WIDTH, initial_indent="# ", subsequent_indent="#   "
            )
        lines.append(f"{_key(f.name)} = {_value(value)}")
    for value, sub in subsections:
        _write_section(value, sub, lines, comments)


def config_to_toml(cfg: FitConfig, *, comments: bool = False) -> str:
    """Write a configuration as TOML (every key, defaults included).

    Parameters
    ----------
    cfg : FitConfig
        The configuration.
    comments : bool
        Precede every section and key with its documentation.

    Returns
    -------
    str
        TOML text; ``config_from_dict(tomllib.loads(text)) == cfg``.
    """
    lines: list[str] = []
    if comments:
        lines += [
            "# differland fit configuration (every key optional; the values shown are the",
            "# defaults unless set in the file this was made from)",
        ]
    for f in fields(cfg):
        _write_section(getattr(cfg, f.name), f.name, lines, comments)
    return "\n".join(lines) + "\n"
