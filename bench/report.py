"""What a benchmark hands back: its rows, its headline figures, and how both are printed.

A `Section` is one benchmark's result: a Markdown table of everything it
measured and the `Figure`s that go into the combined table, each beside the
physical reference measured in the same run and, where there is one, the
target it is held to.
"""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

RESULTS = Path(__file__).resolve().parent / "results"
PERFORMANCE = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
# docs/performance.md holds the last full run's combined table between these lines; a
# full run replaces what is between them and leaves the rest of the page as written.
TABLE_BEGIN = "<!-- begin: written by `python -m bench`, do not edit by hand -->"
TABLE_END = "<!-- end: written by `python -m bench` -->"


@dataclass(frozen=True, slots=True)
class Target:
    """`value <= bound` (at_most) or `value >= bound` (at_least)."""

    kind: Literal["at_most", "at_least"]
    bound: float
    unit: str

    def met(self, value: float | None) -> bool | None:
        if value is None or math.isnan(value):
            return None
        return value <= self.bound if self.kind == "at_most" else value >= self.bound

    def __str__(self) -> str:
        sign = "≤" if self.kind == "at_most" else "≥"
        return f"{sign} {fmt(self.bound)}{_spaced(self.unit)}"


@dataclass(frozen=True, slots=True)
class Figure:
    """One line of the combined table."""

    name: str
    value: float | None
    unit: str
    reference: float | None = None
    reference_name: str = ""  # what the reference is, e.g. "raw socket one-way"
    target: Target | None = None
    ratio_of: Literal["reference", "none"] = "reference"
    target_on: Literal["value", "ratio"] = "value"
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.ratio_of == "none" or self.value is None or not self.reference:
            return None
        return self.value / self.reference

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return self.target.met(self.ratio if self.target_on == "ratio" else self.value)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["target"] = str(self.target) if self.target else None
        data["ratio"] = self.ratio
        data["met"] = self.met
        return data


@dataclass(slots=True)
class Section:
    """One benchmark's result."""

    name: str
    title: str
    columns: tuple[str, ...] = ()
    rows: list[tuple[str, ...]] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # everything raw, for the JSON
    seconds: float = 0.0

    def add_row(self, *cells: object) -> None:
        self.rows.append(tuple(c if isinstance(c, str) else fmt(c) for c in cells))

    def markdown(self) -> str:
        out = [f"### {self.title}", ""]
        if self.columns:
            out += markdown_table(self.columns, self.rows)
        out += [f"- {note}" for note in self.notes]
        return "\n".join(out).rstrip() + "\n"

    def write_json(self, quick: bool, directory: Path = RESULTS) -> Path:
        """bench/results/<name>.json; a quick run's go to bench/results/quick/ instead, so
        that a smoke run never overwrites the last full measurement."""
        if quick:
            directory = directory / "quick"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.name}.json"
        document = {
            "name": self.name,
            "title": self.title,
            "quick": quick,
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": machine(),
            "seconds": round(self.seconds, 1),
            "columns": list(self.columns),
            "rows": [list(r) for r in self.rows],
            "figures": [f.to_json() for f in self.figures],
            "notes": self.notes,
            "data": self.data,
        }
        path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2 | _NUMPY) + b"\n")
        return path


_NUMPY = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def machine() -> dict[str, Any]:
    import os

    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "node": platform.node(),
    }


def combined_table(sections: Sequence[Section]) -> str:
    """Every headline figure of every section, Markdown."""
    columns = ("benchmark", "figure", "measured", "reference (same run)", "ratio", "target", "met")
    rows: list[tuple[str, ...]] = []
    for section in sections:
        for f in section.figures:
            reference = (
                f"{fmt(f.reference)}{_spaced(f.unit)} ({f.reference_name})"
                if f.reference is not None
                else (f.reference_name or "–")
            )
            ratio = f"{f.ratio:.2f}x" if f.ratio is not None else "–"
            value = f"{fmt(f.value)}{_spaced(f.unit)}" if f.value is not None else "n/a"
            if f.note:
                value += f" ({f.note})"
            met = {True: "yes", False: "**no**", None: "–"}[f.met]
            target = str(f.target or "–") + (" (ratio)" if f.target_on == "ratio" else "")
            rows.append((section.name, f.name, value, reference, ratio, target, met))
    return "\n".join(markdown_table(columns, rows)) + "\n"


def performance_page(page: str, table: str, measured_at: str, where: str) -> str:
    """`page` with the text between its markers replaced by `table`, said to come from a
    full run at `measured_at` on `where`."""
    begin, end = page.find(TABLE_BEGIN), page.find(TABLE_END)
    if begin < 0 or end < begin:
        raise ValueError(f"no {TABLE_BEGIN!r} ... {TABLE_END!r} lines to write the table between")
    said = f"The last full `make bench` run, {measured_at}, on {where}:"
    head = page[: begin + len(TABLE_BEGIN)]
    return f"{head}\n{said}\n\n{table.rstrip()}\n{page[end:]}"


def write_performance(table: str, where: str, path: Path = PERFORMANCE) -> Path:
    """Put a full run's combined table into docs/performance.md."""
    measured_at = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    page = performance_page(path.read_text(encoding="utf-8"), table, measured_at, where)
    path.write_text(page, encoding="utf-8")
    return path


def describe_machine(engine: str = "") -> str:
    """The machine in a few words, for a reader comparing figures: CPUs, system, engine."""
    about = machine()
    words = f"{about['cpus']} CPUs, {platform.system()} {platform.release()}, "
    words += f"Python {about['python']}"
    return f"{words}, {engine}" if engine else words


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [len(c) for c in columns]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return [line(columns), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [
        line(r) for r in rows
    ]


def fmt(value: object) -> str:
    """Numbers with about three significant digits; thousands separated; None as n/a."""
    if value is None:
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    magnitude = abs(value)
    if isinstance(value, int) or magnitude >= 1000:
        return f"{round(value):,}"
    if magnitude == 0:
        return "0"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    digits = 2 - math.floor(math.log10(magnitude))
    return f"{value:.{digits}f}"


def _spaced(unit: str) -> str:
    return f" {unit}" if unit and unit != "x" else unit
