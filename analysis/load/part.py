"""Some lines of one file as columns: what a block of lines becomes, whichever path read it."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import numpy as np

from analysis.load.columns import Messages, Receives, Totals, VmConfig
from analysis.load.matching import Keys


@dataclass(frozen=True, slots=True)
class Part:
    """The messages and edges of some lines of one file; rows count from the part's first line.

    The lines' own columns go straight to the trial's `LinesSink`; `rows` says how many.
    """

    rows: int
    sends: Messages
    receives: Receives
    failures: Messages
    drops: Messages  # `fault` lines of kind loss: sends the VM's link conditions threw away
    duplicates: Messages  # `fault` lines of kind duplicate: sends a link condition sent twice
    configs: tuple[tuple[int, VmConfig], ...]
    ready: tuple[tuple[int, float], ...]
    stops: tuple[tuple[int, Totals], ...]
    keys: tuple[Keys | None, ...]  # of the sends', receives' and failures' msg_ids (matching.py)

    @classmethod
    def concat(cls, parts: list[Part]) -> Part:
        """Join parts whose lines lie one after the other, in this order."""
        offsets = [0, *accumulate(p.rows for p in parts)][:-1]

        def shifted(name: str) -> tuple[Any, ...]:
            return tuple(
                (row + off, value)
                for p, off in zip(parts, offsets, strict=True)
                for row, value in getattr(p, name)
            )

        return cls(
            rows=sum(p.rows for p in parts),
            sends=Messages.concat([p.sends for p in parts], offsets),
            receives=Receives.concat([p.receives for p in parts], offsets),
            failures=Messages.concat([p.failures for p in parts], offsets),
            drops=Messages.concat([p.drops for p in parts], offsets),
            duplicates=Messages.concat([p.duplicates for p in parts], offsets),
            configs=shifted("configs"),
            ready=shifted("ready"),
            stops=shifted("stops"),
            keys=tuple(_joined([p.keys[i] for p in parts]) for i in range(3)),
        )


def _joined(keys: list[Keys | None]) -> Keys | None:
    """The parts' keys end to end, where every part has them."""
    present = [k for k in keys if k is not None]
    if len(present) < len(keys):
        return None
    return np.concatenate(present) if present else np.zeros(0, dtype="S1")
