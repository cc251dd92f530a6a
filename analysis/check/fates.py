"""What became of a message: the fates the books know, and a break in them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TypeAlias

import numpy as np
import numpy.typing as npt

from analysis.check.verdict import Rule

Bools: TypeAlias = npt.NDArray[np.bool_]


class Fate(StrEnum):
    RECEIVED = "received"
    FAILED = "failed"
    DROPPED = "dropped"
    QUEUED = "queued"
    LOST = "lost"  # in a crashed incarnation's inbox, or on the wire as its sender crashed
    VANISHED = "vanished"


FATES: tuple[Fate, ...] = tuple(Fate)
RECEIVED, FAILED, DROPPED, QUEUED, LOST, VANISHED = range(len(FATES))
UNDECIDED = -1


@dataclass(frozen=True, slots=True)
class Unexplained:
    """A break in the books: `row` is the line where the evidence fails."""

    rule: Rule  # VANISHED: a msg_id with no fate; SURPLUS: a copy nothing explains
    row: int
    detail: str
