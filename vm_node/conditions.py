"""Link conditions the VMs apply themselves (the kernel here has no netem).

A condition delays, loses or duplicates the messages a VM sends on some
links (or all) during a window of simulated time. Draws come from the VM's
own seeded RNG, so a schedule replays exactly.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

import msgspec

from vm_node.errors import ConditionError as ConditionError  # where callers look for it

KINDS = ("delay", "loss", "duplicate")
DISTRIBUTIONS = {"constant": ("value",), "uniform": ("low", "high"), "exponential": ("mean",)}


class DelayDistribution(msgspec.Struct, frozen=True):
    dist: str
    params: tuple[float, ...]  # as DISTRIBUTIONS names them

    def sample(self, rng: random.Random) -> float:
        match self.dist:
            case "constant":
                return self.params[0]
            case "uniform":
                return rng.uniform(*self.params)
            case _:
                return rng.expovariate(1.0 / self.params[0])

    def to_json(self) -> dict[str, Any]:
        return {"dist": self.dist} | dict(zip(DISTRIBUTIONS[self.dist], self.params, strict=True))

    @classmethod
    def from_json(cls, data: object, field: str) -> DelayDistribution:
        if not isinstance(data, dict) or data.get("dist") not in DISTRIBUTIONS:
            raise ConditionError(f"{field}.dist", f"must be one of {sorted(DISTRIBUTIONS)}")
        names = DISTRIBUTIONS[data["dist"]]
        extra = set(data) - {"dist", *names}
        if extra:
            raise ConditionError(f"{field}.{sorted(extra)[0]}", f"unknown for {data['dist']}")
        params = tuple(_seconds(data.get(name), f"{field}.{name}") for name in names)
        if data["dist"] == "uniform" and params[0] > params[1]:
            raise ConditionError(f"{field}.low", "is above high")
        if data["dist"] == "exponential" and params[0] == 0:
            raise ConditionError(f"{field}.mean", "must be > 0")
        return cls(data["dist"], params)


class LinkCondition(msgspec.Struct, frozen=True):
    kind: str  # delay | loss | duplicate
    start: float  # simulated seconds after the trial's start
    end: float | None  # None: until the end of the trial
    links: frozenset[frozenset[int]] | None  # None: every link
    probability: float = 0.0  # loss and duplicate
    delay: DelayDistribution | None = None

    def applies(self, sender: int, receiver: int, now: float) -> bool:
        if not (self.start <= now and (self.end is None or now < self.end)):
            return False
        return self.links is None or frozenset((sender, receiver)) in self.links

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "start": self.start, "end": self.end}
        data["links"] = sorted(sorted(link) for link in self.links) if self.links else None
        if self.kind == "delay" and self.delay:
            data["delay"] = self.delay.to_json()
        else:
            data["probability"] = self.probability
        return data

    @classmethod
    def from_json(cls, data: object, field: str, vms: int | None = None) -> LinkCondition:
        if not isinstance(data, dict):
            raise ConditionError(field, "must be a mapping")
        kind = data.get("kind")
        if kind not in KINDS:
            raise ConditionError(f"{field}.kind", f"must be one of {list(KINDS)}, got {kind!r}")
        start = _seconds(data.get("start", 0.0), f"{field}.start")
        end = None if data.get("end") is None else _seconds(data["end"], f"{field}.end")
        if end is not None and end <= start:
            raise ConditionError(f"{field}.end", "must be after start")
        links = _links(data.get("links"), f"{field}.links", vms)
        if kind == "delay":
            delay = DelayDistribution.from_json(data.get("delay"), f"{field}.delay")
            return cls(kind, start, end, links, delay=delay)
        p = data.get("probability")
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 1:
            raise ConditionError(f"{field}.probability", f"must be in [0, 1], got {p!r}")
        return cls(kind, start, end, links, probability=float(p))


class Delivery(msgspec.Struct, frozen=True, gc=False):
    """What becomes of one message: `copies` sent (0: lost), each after its delay."""

    delays: tuple[float, ...]  # simulated seconds, one per copy

    @property
    def lost(self) -> bool:
        return not self.delays

    @property
    def duplicated(self) -> bool:
        return len(self.delays) > 1


NORMAL = Delivery((0.0,))


class LinkConditions:
    def __init__(self, conditions: Sequence[LinkCondition], me: int, rng: random.Random) -> None:
        self._conditions = tuple(conditions)
        self._me = me
        self._rng = rng

    def __bool__(self) -> bool:
        return bool(self._conditions)

    def delivery(self, to: int, now: float) -> Delivery:
        """The fate of a message sent to `to` at simulated time `now`."""
        active = [c for c in self._conditions if c.applies(self._me, to, now)]
        if not active:
            return NORMAL
        copies = 1
        for c in active:
            if c.kind == "loss" and self._rng.random() < c.probability:
                return Delivery(())
            if c.kind == "duplicate" and self._rng.random() < c.probability:
                copies = 2
        delays = [c.delay for c in active if c.delay is not None]
        return Delivery(tuple(sum(d.sample(self._rng) for d in delays) for _ in range(copies)))


def _seconds(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConditionError(field, f"must be a number of seconds, got {value!r}")
    if value < 0:
        raise ConditionError(field, f"must be >= 0, got {value!r}")
    return float(value)


def _links(value: object, field: str, vms: int | None) -> frozenset[frozenset[int]] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise ConditionError(field, "must be a list of [a, b] VM id pairs")
    links = set()
    for i, pair in enumerate(value):
        ok = (
            isinstance(pair, list)
            and len(pair) == 2
            and all(
                isinstance(v, int)
                and not isinstance(v, bool)
                and v >= 0
                and (vms is None or v < vms)
                for v in pair
            )
        )
        if not ok or pair[0] == pair[1]:
            raise ConditionError(f"{field}[{i}]", f"must be two different VM ids, got {pair!r}")
        links.add(frozenset(pair))
    return frozenset(links)
