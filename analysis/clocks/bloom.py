"""A Bloom clock (Ramabaja, 2019): a fixed-size stand-in for the vector clock.

Each event adds one to k of m counters, chosen by hashing the event's name
(its VM and its number there); a receive first takes the elementwise larger
of its own counters and the message's. If a happened before b, every counter
of a is at most b's, so the clock never misses a true happened-before. It
may claim one that is not there: two concurrent events whose counters happen
to compare. How often it does is judged against vector clocks, on pairs of
events from different VMs drawn with a seeded generator.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from analysis.clocks import vector
from analysis.clocks.figures import Figures
from analysis.clocks.trace import Trace
from analysis.columns import Ints, TrialLog

COUNTERS = 16  # m
HASHES = 2  # k
PAIRS = 4000  # event pairs drawn to judge the clock
SEED = 0

Flags = np.ndarray[tuple[int], np.dtype[np.bool_]]


def positions(vm: int, n: int, counters: int = COUNTERS, hashes: int = HASHES) -> list[int]:
    """The counters that VM `vm`'s event number `n` adds one to."""
    digest = hashlib.blake2b(f"{vm}:{n}".encode(), digest_size=4 * hashes).digest()
    return [int.from_bytes(digest[4 * j : 4 * j + 4], "big") % counters for j in range(hashes)]


def recompute(trace: Trace, counters: int = COUNTERS, hashes: int = HASHES) -> Ints:
    """Each event's Bloom clock after the event, shape (events, counters)."""
    values = np.zeros((len(trace), counters), dtype=np.int64)
    clock = np.zeros((trace.vms, counters), dtype=np.int64)
    vm, source, receive = trace.vm.tolist(), trace.source.tolist(), trace.receive.tolist()
    own = trace.own_count().tolist()
    for i in trace.order.tolist():
        v = vm[i]
        if receive[i] and source[i] >= 0:
            np.maximum(clock[v], values[source[i]], out=clock[v])
        for p in positions(v, own[i], counters, hashes):
            clock[v, p] += 1
        values[i] = clock[v]
    return values


def says_before(blooms: Ints, a: Ints, b: Ints) -> Flags:
    """For each pair, whether the Bloom clock says a[k] may have happened before b[k]."""
    ba, bb = blooms[a], blooms[b]
    result: Flags = np.all(ba <= bb, axis=1) & np.any(ba < bb, axis=1)
    return result


@dataclass(frozen=True, slots=True)
class Judgement:
    """The Bloom clock against vector clocks on sampled pairs (a, b) from different VMs."""

    first: Ints  # the event a of every pair
    concurrent: Flags  # vector clocks order the pair neither way
    false_positive: Flags  # concurrent, but the Bloom clock orders it one way or the other
    missed: Flags  # ordered by vector clocks one way, not by the Bloom clock

    @property
    def false_positive_rate(self) -> float:
        """The share of concurrent pairs that the Bloom clock says are ordered."""
        concurrent = int(self.concurrent.sum())
        return float(self.false_positive.sum()) / concurrent if concurrent else float("nan")


def judge(
    trace: Trace,
    *,
    pairs: int = PAIRS,
    seed: int = SEED,
    counters: int = COUNTERS,
    hashes: int = HASHES,
) -> Judgement:
    """Draw `pairs` pairs of events from different VMs and compare both clocks on each."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, len(trace), size=pairs) if len(trace) else np.zeros(0, np.int64)
    b = rng.integers(0, len(trace), size=len(a))
    different = trace.vm[a] != trace.vm[b]
    a, b = a[different], b[different]
    vectors, blooms = vector.recompute(trace), recompute(trace, counters, hashes)
    before, after = vector.happened_before(vectors, a, b), vector.happened_before(vectors, b, a)
    says_ab, says_ba = says_before(blooms, a, b), says_before(blooms, b, a)
    concurrent = ~before & ~after
    return Judgement(
        first=a,
        concurrent=concurrent,
        false_positive=concurrent & (says_ab | says_ba),
        missed=(before & ~says_ab) | (after & ~says_ba),
    )


def figures(trial: TrialLog, trace: Trace) -> Figures:
    judged = judge(trace)
    rates = []
    for v in range(trace.vms):
        mine = trace.vm[judged.first] == v
        concurrent = int((judged.concurrent & mine).sum())
        false = int((judged.false_positive & mine).sum())
        rates.append(false / concurrent if concurrent else float("nan"))
    return Figures({"bloom FP rate": tuple(rates)})
