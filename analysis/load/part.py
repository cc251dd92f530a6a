"""Some lines of one file as columns: what a block of lines becomes, whichever path read it."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from analysis.load.columns import Lines, Messages, Receives, Totals, VmConfig


@dataclass(frozen=True, slots=True)
class Part:
    """The columns of some lines of one file; rows count from the part's first line."""

    lines: Lines
    sends: Messages
    receives: Receives
    failures: Messages
    drops: Messages  # `fault` lines of kind loss: sends the VM's link conditions threw away
    duplicates: Messages  # `fault` lines of kind duplicate: sends a link condition sent twice
    configs: tuple[tuple[int, VmConfig], ...]
    ready: tuple[tuple[int, float], ...]
    stops: tuple[tuple[int, Totals], ...]

    @classmethod
    def concat(cls, parts: list[Part], lines: Lines) -> Part:
        """Join parts whose lines, in this order, are `lines`."""
        offsets = [0, *accumulate(len(p.lines) for p in parts)][:-1]

        def shifted(name: str) -> tuple[Any, ...]:
            return tuple(
                (row + off, value)
                for p, off in zip(parts, offsets, strict=True)
                for row, value in getattr(p, name)
            )

        return cls(
            lines=lines,
            sends=Messages.concat([p.sends for p in parts], offsets),
            receives=Receives.concat([p.receives for p in parts], offsets),
            failures=Messages.concat([p.failures for p in parts], offsets),
            drops=Messages.concat([p.drops for p in parts], offsets),
            duplicates=Messages.concat([p.duplicates for p in parts], offsets),
            configs=shifted("configs"),
            ready=shifted("ready"),
            stops=shifted("stops"),
        )
