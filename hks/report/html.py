"""The report page: one self-contained HTML file that opens offline, anywhere.

Plotly's script is embedded once (nothing is fetched from the network); the page's own script
(``page.js``) draws every interactive chart and the trials table from one JSON document embedded in
the page. PNGs (the architecture) are base64 ``data:`` URIs. Every piece of text that comes from
results (error messages, model names, hyperparameter values) is HTML-escaped here, or set as text by
the script.
"""

from __future__ import annotations

import base64
import functools
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any


@dataclass
class Picture:
    """A PNG with a caption, or the one-line reason why it could not be drawn."""

    title: str
    path: Path | None = None
    caption: str = ""
    problem: str | None = None


@dataclass
class Link:
    """A cell that links to a file beside the page (a trial's JSON result)."""

    href: str
    text: str


@dataclass
class Table:
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    wrap: Sequence[str] = ()  # columns whose long text may wrap (error messages, settings)


@dataclass
class Section:
    anchor: str
    title: str
    paragraphs: list[str] = field(default_factory=list)
    pictures: list[Picture] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    charts: str = ""  # containers the page's script fills (trusted markup, no result text)
    warning: str | None = None


def format_value(value: Any) -> str:
    """Short, readable cell text: floats to 4 significant digits, None and NaN as ``None``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "None"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e6 else f"{value:.4g}"
    return str(value)


@functools.cache
def asset(name: str) -> str:
    """The page's own script and style sheet, shipped beside this module."""
    return resources.files("hks.report").joinpath(name).read_text(encoding="utf-8")


@functools.cache
def plotly_script() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _picture(picture: Picture) -> str:
    title = html.escape(picture.title)
    if picture.problem or picture.path is None or not picture.path.is_file():
        reason = picture.problem or "the picture was not drawn"
        return f'<p class="problem">{title}: {html.escape(reason)}</p>'
    caption = f"<figcaption>{html.escape(picture.caption)}</figcaption>" if picture.caption else ""
    return (f'<figure><img src="{_data_uri(picture.path)}" alt="{title}" '
            f'data-file="{html.escape(picture.path.name)}">{caption}</figure>')


def _cell(column: str, value: Any, wrap: set[str]) -> str:
    css = " class=wrap" if column in wrap else ""
    if isinstance(value, Link):
        return f'<td{css}><a href="{html.escape(value.href)}">{html.escape(value.text)}</a></td>'
    return f"<td{css}>{html.escape(format_value(value))}</td>"


def table_html(table: Table) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    wrap = set(table.wrap)
    body = "".join("<tr>" + "".join(_cell(c, v, wrap) for c, v in zip(table.columns, row)) + "</tr>"
                   for row in table.rows)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _section(section: Section) -> str:
    parts = [f'<section id="{html.escape(section.anchor)}"><h2>{html.escape(section.title)}</h2>']
    if section.warning:
        parts.append(f'<p class="warning" role="alert">{html.escape(section.warning)}</p>')
    parts += [f"<p>{html.escape(p)}</p>" for p in section.paragraphs]
    parts.append(section.charts)
    parts += [table_html(t) for t in section.tables]
    parts += [_picture(p) for p in section.pictures]
    parts.append("</section>")
    return "\n".join(parts)


def render_page(title: str, summary: Sequence[str], sections: Sequence[Section], *, notices: Sequence[str] = (),
                live: str = "", data_json: str = "{}") -> str:
    """The whole page as text. ``live`` is the (already escaped) running-search panel."""
    nav = " ".join(f'<a href="#{html.escape(s.anchor)}">{html.escape(s.title)}</a>' for s in sections)
    notice_html = "".join(f'<p class="notice">{html.escape(n)}</p>' for n in notices)
    summary_html = "".join(f'<p class="meta">{html.escape(line)}</p>' for line in summary)
    body = "\n".join(_section(s) for s in sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{asset('page.css')}</style></head>\n<body>\n"
            f"<h1>{html.escape(title)}</h1>\n{summary_html}\n{notice_html}\n{live}\n<nav>{nav}</nav>\n{body}\n"
            f'<script type="application/json" id="hks-data">{data_json}</script>\n'
            f"<script>{plotly_script()}</script>\n<script>{asset('page.js')}</script>\n"
            f"</body></html>\n")
