"""Small HTML helpers for the report: escaped text, tables, figures, badges."""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Sequence
from html import escape
from pathlib import Path

CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330;
       max-width: 1180px; margin: 0 auto; padding: 1.5rem 2rem 4rem; background: #fbfbfd; }
h1 { font-size: 1.9rem; margin-bottom: 0.2rem; }
h2 { margin-top: 2.6rem; border-bottom: 2px solid #d9dde7; padding-bottom: 0.3rem; }
h3 { margin-top: 1.8rem; }
.subtitle, .note, figcaption { color: #5a6274; }
.note { font-size: 0.92rem; }
table { border-collapse: collapse; margin: 0.8rem 0 1.2rem; font-size: 0.86rem; background: #fff; }
th, td { border: 1px solid #dfe3ec; padding: 0.28rem 0.55rem; text-align: right; }
th { background: #eef1f7; font-weight: 600; }
td.text, th.text { text-align: left; }
tr:nth-child(even) td { background: #f8f9fc; }
.badge { display: inline-block; padding: 0.05rem 0.55rem; border-radius: 0.8rem; font-size: 0.8rem;
         font-weight: 600; white-space: nowrap; }
.good { background: #dcf5e3; color: #14652d; } .bad { background: #fbdcdc; color: #8c1c1c; }
.meh { background: #fff1cc; color: #7a5800; } .none { background: #e8eaf0; color: #4a5060; }
figure { margin: 1.2rem 0 2rem; }
figure img { max-width: 100%; border: 1px solid #e2e5ee; background: #fff; }
details { margin: 0.4rem 0 1rem; } summary { cursor: pointer; }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: 0.84rem; }
pre { background: #f1f3f8; padding: 0.6rem 0.8rem; overflow-x: auto; }
dl.glossary dt { font-weight: 600; margin-top: 0.5rem; } dl.glossary dd { margin-left: 1.2rem; }
.cards { display: flex; gap: 1rem; flex-wrap: wrap; margin: 1rem 0; }
.card { background: #fff; border: 1px solid #dfe3ec; border-radius: 0.5rem; padding: 0.7rem 1rem;
        min-width: 9rem; }
.card b { display: block; font-size: 1.5rem; }
"""


def text(value: object) -> str:
    return escape(str(value))


def num(value: float | int, digits: int = 2) -> str:
    """A number for a table cell; nan and None become a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, int) or (float(value).is_integer() and abs(value) < 1e15):
        return f"{int(value):,}"
    return f"{value:,.{digits}f}"


def percent(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.0%}"


def badge(label: str, tone: str) -> str:
    """tone: good, bad, meh or none."""
    return f'<span class="badge {tone}">{text(label)}</span>'


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], text_columns: int = 1) -> str:
    """Cells are HTML already; the first `text_columns` columns are left-aligned."""

    def cell(tag: str, i: int, content: str) -> str:
        css = ' class="text"' if i < text_columns else ""
        return f"<{tag}{css}>{content}</{tag}>"

    head = "".join(cell("th", i, text(h)) for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def figure(png: bytes, alt: str, caption: str) -> str:
    """A PNG embedded as a data URI, so the page needs nothing else."""
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{text(alt)}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


class Gallery:
    """Embeds each figure in the page and, given a directory, also saves it there as a PNG."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
        self.saved: list[Path] = []

    def figure(self, name: str, png: bytes, alt: str, caption: str) -> str:
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / (re.sub(r"[^\w.-]+", "_", name) + ".png")
            path.write_bytes(png)
            self.saved.append(path)
        return figure(png, alt, caption)
