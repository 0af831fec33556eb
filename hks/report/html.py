"""The report page: one self-contained HTML file that opens offline, anywhere.

Pictures are embedded as base64 ``data:`` URIs (the PNGs are also written beside the page for
reuse), styles are inline, and no script or external resource is referenced. Every piece of text
that comes from results (error messages, model names, hyperparameter values) is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1400px;
padding:1rem 2rem;color:#222;background:#fff}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2rem}
nav a{margin-right:1rem}.meta{color:#555}.notice{background:#fff4d6;border:1px solid #e0b84f;padding:.8rem}
.problem{color:#a33;font-style:italic}figure{margin:1rem 0}figcaption{color:#555;font-size:.9rem}
img{max-width:100%;height:auto;border:1px solid #eee}.scroll{overflow-x:auto}
#best .scroll{display:inline-block;vertical-align:top;margin-right:2rem}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top;white-space:nowrap}
th{background:#f3f3f3}td.wrap{white-space:normal;max-width:40rem;word-break:break-word}
"""


@dataclass
class Picture:
    """A PNG with a caption, or the one-line reason why it could not be drawn."""

    title: str
    path: Path | None = None
    caption: str = ""
    problem: str | None = None


@dataclass
class Table:
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    wrap: Sequence[str] = ()  # columns whose long text may wrap (error messages)


@dataclass
class Section:
    anchor: str
    title: str
    paragraphs: list[str] = field(default_factory=list)
    pictures: list[Picture] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


def format_value(value: Any) -> str:
    """Short, readable cell text: floats to 4 significant digits, None and NaN as ``None``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "None"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e6 else f"{value:.4g}"
    return str(value)


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


def _table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    wrap = set(table.wrap)
    body = "".join(
        "<tr>" + "".join(f'<td{" class=wrap" if col in wrap else ""}>{html.escape(format_value(v))}</td>'
                         for col, v in zip(table.columns, row)) + "</tr>"
        for row in table.rows)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _section(section: Section) -> str:
    parts = [f'<section id="{html.escape(section.anchor)}"><h2>{html.escape(section.title)}</h2>']
    parts += [f"<p>{html.escape(p)}</p>" for p in section.paragraphs]
    parts += [_picture(p) for p in section.pictures]
    parts += [_table(t) for t in section.tables]
    parts.append("</section>")
    return "\n".join(parts)


def render_page(title: str, summary: Sequence[str], sections: Sequence[Section], notice: str | None = None) -> str:
    """The whole page as text."""
    nav = " ".join(f'<a href="#{html.escape(s.anchor)}">{html.escape(s.title)}</a>' for s in sections)
    notice_html = f'<p class="notice">{html.escape(notice)}</p>' if notice else ""
    summary_html = "".join(f'<p class="meta">{html.escape(line)}</p>' for line in summary)
    body = "\n".join(_section(s) for s in sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body>\n"
            f"<h1>{html.escape(title)}</h1>\n{summary_html}\n{notice_html}\n<nav>{nav}</nav>\n{body}\n"
            f"</body></html>\n")
