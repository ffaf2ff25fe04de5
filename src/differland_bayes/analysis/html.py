"""Render report sections as one self-contained HTML page (figures as base64 PNG)."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd
from matplotlib.figure import Figure

from .plots import figure_png

__all__ = ["Section", "render_html", "slug"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { border-bottom: 2px solid #444; } h2 { border-bottom: 1px solid #bbb; margin-top: 2em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1.5em 0; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
th { background: #f0f0f0; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; margin: 0.5em 0; } .note { color: #555; font-size: 0.9em; }
.error { color: #a00; } .meta td { text-align: left; }
"""


@dataclass
class Section:
    """One section of a report.

    Attributes
    ----------
    title : str
        Heading.
    text : str
        Explanatory text (plain text; paragraphs separated by blank lines).
    figures : dict of str to Figure
        Caption -> figure.
    tables : dict of str to pandas.DataFrame
        Name -> table; the name is also the CSV file's stem.
    error : str
        Set when the section could not be built (shown instead of its content).
    """

    title: str
    text: str = ""
    figures: dict[str, Figure] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    error: str = ""


def slug(text: str) -> str:
    """Return a file- and anchor-safe lower-case form of ``text``."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "section"


def _paragraphs(text: str) -> str:
    parts = [p.strip() for p in text.split("\n\n") if p.strip()]
    return "".join(f"<p>{html.escape(p)}</p>" for p in parts)


def _table(df: pd.DataFrame, max_rows: int) -> str:
    shown = df if len(df) <= max_rows else df.head(max_rows)
    out = shown.to_html(float_format=lambda x: f"{x:.4g}", na_rep="", border=0,
                        index=df.index.name is not None)  # fmt: skip
    if len(df) > max_rows:
        out += f'<p class="note">first {max_rows} of {len(df)} rows; all in the CSV file</p>'
    return out


def render_html(
    title: str,
    meta: Mapping[str, object],
    sections: Sequence[Section],
    csv_names: Mapping[tuple[int, str], str],
    *,
    max_rows: int = 60,
) -> str:
    """Render a report page.

    Parameters
    ----------
    title : str
        Page title.
    meta : mapping
        Key -> value rows of the header table (run, data, draws, ...).
    sections : sequence of Section
        The sections, in order.
    csv_names : mapping
        ``(section index, table name) -> CSV file name`` (linked under each table).
    max_rows : int
        Rows of a table shown on the page (the CSV has all).

    Returns
    -------
    str
        The HTML document.
    """
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><table class='meta'>",
    ]
    rows = {**meta, "created": datetime.now(UTC).isoformat(timespec="seconds")}
    for k, v in rows.items():
        parts.append(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>")
    parts.append("</table><h2>Contents</h2><ol>")
    for i, s in enumerate(sections):
        parts.append(f"<li><a href='#s{i}-{slug(s.title)}'>{html.escape(s.title)}</a></li>")
    parts.append("</ol>")
    for i, s in enumerate(sections):
        parts.append(f"<h2 id='s{i}-{slug(s.title)}'>{html.escape(s.title)}</h2>")
        if s.error:
            parts.append(f"<p class='error'>not available: {html.escape(s.error)}</p>")
            continue
        parts.append(_paragraphs(s.text))
        for name, df in s.tables.items():
            csv = csv_names.get((i, name), "")
            link = f" (<a href='{html.escape(csv)}'>{html.escape(csv)}</a>)" if csv else ""
            parts.append(f"<h3>{html.escape(name)}{link}</h3>{_table(df, max_rows)}")
        for caption, fig in s.figures.items():
            data = base64.b64encode(figure_png(fig)).decode("ascii")
            parts.append(f"<figure><img alt='{html.escape(caption)}' "
                         f"src='data:image/png;base64,{data}'><figcaption class='note'>"
                         f"{html.escape(caption)}</figcaption></figure>")  # fmt: skip
    parts.append("</body></html>")
    return "\n".join(parts)
