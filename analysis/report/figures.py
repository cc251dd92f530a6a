"""Laying out `plot_x` functions on figures and rendering them to PNG.

Figures are made with `matplotlib.figure.Figure` directly, never pyplot, so no
global backend state is touched and nothing needs a display.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from typing import TypeVar

from matplotlib.axes import Axes
from matplotlib.figure import Figure

T = TypeVar("T")

DPI = 90


def single(
    plot: Callable[[Axes, T], None], data: T, size: tuple[float, float] = (7.5, 3.6)
) -> bytes:
    """One axes, one PNG."""
    fig = Figure(figsize=size, layout="constrained")
    plot(fig.add_subplot(), data)
    return png(fig)


def grid(
    plot: Callable[[Axes, T], None],
    items: Sequence[T],
    columns: int = 3,
    cell: tuple[float, float] = (4.4, 3.1),
) -> bytes:
    """The same plot for every item, `columns` to a row, one PNG."""
    columns = max(1, min(columns, len(items)))
    rows = max(1, math.ceil(len(items) / columns))
    fig = Figure(figsize=(cell[0] * columns, cell[1] * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, item in zip(axes, items, strict=False):
        plot(ax, item)
    for ax in axes[len(items) :]:
        ax.set_visible(False)
    return png(fig)


def panels(
    plots: Sequence[Callable[[Axes, T], None]], data: T, cell: tuple[float, float] = (4.6, 3.4)
) -> bytes:
    """Several plots of the same data side by side, one PNG."""
    fig = Figure(figsize=(cell[0] * len(plots), cell[1]), layout="constrained")
    for ax, plot in zip(fig.subplots(1, len(plots), squeeze=False).ravel(), plots, strict=True):
        plot(ax, data)
    return png(fig)


def png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()
