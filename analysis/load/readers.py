"""Reading the planned blocks: in this process, and for a large trial in a forked helper too.

Decoding is CPU-bound Python, so a second core halves it: the helper reads
the second half of the blocks (by bytes) into the shared `LinesSink` while
this process reads the first, and sends back only the messages and edges, a
few megabytes of lines at a time. It lets go of the sink's pages as it fills
them (they stay this process's), so that its memory stays near that of the
process it was forked from.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from itertools import accumulate

from analysis.load.columns import Lines
from analysis.load.logfile import BlockRead, Expected, read_block
from analysis.load.plan import Block
from analysis.load.sink import LinesSink

HELPER_BYTES = 16 << 20  # below this, starting a helper costs more than it saves
BATCH_BYTES = 4 << 20  # what the helper reads before it sends the messages back

_adopted: tuple[Sequence[Expected], LinesSink] | None = None  # a helper's files and sink


def read_blocks(
    files: Sequence[Expected], blocks: Sequence[Block], sink: LinesSink, helpers: int | None = None
) -> list[BlockRead]:
    """Every block read into `sink`, in order; `helpers`: processes beside this one (0 or 1)."""
    if helpers is None:
        helpers = 1 if _worth_a_helper(blocks) else 0
    if not helpers or len(blocks) < 2:
        return _read(files, blocks, sink)
    sizes = list(accumulate(b.size for b in blocks))
    half = next(i for i, size in enumerate(sizes) if size >= sizes[-1] / 2) + 1
    half = min(half, len(blocks) - 1)
    fork = multiprocessing.get_context("fork")  # the helper inherits the sink, not a copy
    with ProcessPoolExecutor(
        1, mp_context=fork, initializer=_adopt, initargs=(files, sink)
    ) as pool:
        batches = _batches(blocks[half:])
        second = [pool.submit(_read_adopted, batch) for batch in batches]
        reads = _read(files, blocks[:half], sink)
        for i, batch in enumerate(second):
            try:
                reads += batch.result()
            except BrokenProcessPool:  # the helper died (out of memory?): read the rest here
                return reads + _read(files, [b for rest in batches[i:] for b in rest], sink)
        return reads


def _batches(blocks: Sequence[Block]) -> list[Sequence[Block]]:
    """The blocks in runs of about BATCH_BYTES."""
    batches: list[Sequence[Block]] = []
    start = size = 0
    for i, block in enumerate(blocks):
        size += block.size
        if size >= BATCH_BYTES or i == len(blocks) - 1:
            batches.append(blocks[start : i + 1])
            start, size = i + 1, 0
    return batches


def _worth_a_helper(blocks: Sequence[Block]) -> bool:
    return (
        sum(b.size for b in blocks) >= HELPER_BYTES
        and _cpus() > 1
        and "fork" in multiprocessing.get_all_start_methods()
        # Forking a process that runs other threads could copy a lock some thread holds.
        and threading.active_count() == 1
    )


def _cpus() -> int:
    """The CPUs this process may run on (its affinity where the system tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _read(files: Sequence[Expected], blocks: Sequence[Block], sink: LinesSink) -> list[BlockRead]:
    return [read_block(files[block.file], block, sink.place) for block in blocks]


def _adopt(files: Sequence[Expected], sink: LinesSink) -> None:
    global _adopted
    _adopted = (files, sink)


def _read_adopted(blocks: Sequence[Block]) -> list[BlockRead]:
    assert _adopted is not None, "a helper reads only after _adopt"
    files, sink = _adopted

    def place_and_let_go(lines: Lines, at: int) -> None:
        sink.place(lines, at)
        sink.release(
            blocks[0].row, at + len(lines) - blocks[0].row
        )  # none of the batch left behind

    return [read_block(files[block.file], block, place_and_let_go) for block in blocks]
