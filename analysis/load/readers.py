"""Reading the planned blocks: in this process, and for a large trial in a forked helper too.

Decoding is CPU-bound Python, so a second core halves it: the helper reads
the second half of the blocks (by bytes) while this process reads the first.
The helper sends back each few blocks' columns as soon as they are read, and
this process copies them into the sink, so that the helper holds only the
blocks in hand: its memory stays near that of the process it was forked from.
(The columns waiting here fill rows of the sink that nothing has touched yet.)
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from itertools import accumulate

from analysis.load.columns import Lines
from analysis.load.logfile import BlockRead, Expected, read_block
from analysis.load.plan import Block
from analysis.load.sink import LinesSink

HELPER_BYTES = 16 << 20  # below this, starting a helper costs more than it saves
BATCH_BYTES = 4 << 20  # what the helper reads before it sends the columns back

_files: Sequence[Expected] = ()  # a helper's files, set once by _adopt

Batch = tuple[list[BlockRead], list[tuple[int, Lines]]]  # a helper's reads, and their columns
Pending = deque[tuple[Future[Batch], Sequence[Block]]]  # batches not yet placed, with their blocks


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
    fork = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(1, mp_context=fork, initializer=_adopt, initargs=(files,)) as pool:
        pending = deque((pool.submit(_read_batch, b), b) for b in _batches(blocks[half:]))
        first: list[BlockRead] = []
        second: list[BlockRead] = []
        for block in blocks[:half]:
            first.append(read_block(files[block.file], block, sink.place))
            second += _drain(files, pending, sink, wait=False)  # place them as they come
        second += _drain(files, pending, sink, wait=True)
        return first + second


def _drain(
    files: Sequence[Expected], pending: Pending, sink: LinesSink, wait: bool
) -> list[BlockRead]:
    """The reads of the helper's batches that are done (all of them if `wait`), in order."""
    reads: list[BlockRead] = []
    try:
        while pending and (wait or pending[0][0].done()):
            reads += _placed(pending[0][0], sink)
            pending.popleft()
    except BrokenProcessPool:  # the helper died (out of memory?): read the rest here
        reads += _read(files, [block for _, batch in pending for block in batch], sink)
        pending.clear()
    return reads


def _batches(blocks: Sequence[Block]) -> list[Sequence[Block]]:
    batches: list[Sequence[Block]] = []
    start = size = 0
    for i, block in enumerate(blocks):
        size += block.size
        if size >= BATCH_BYTES or i == len(blocks) - 1:
            batches.append(blocks[start : i + 1])
            start, size = i + 1, 0
    return batches


def _placed(batch: Future[Batch], sink: LinesSink) -> list[BlockRead]:
    """The batch's reads, its columns copied into the sink and let go."""
    reads, columns = batch.result()
    while columns:
        at, lines = columns.pop(0)
        sink.place(lines, at)
    return reads


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


def _adopt(files: Sequence[Expected]) -> None:
    global _files
    _files = files


def _read_batch(blocks: Sequence[Block]) -> Batch:
    columns: list[tuple[int, Lines]] = []
    reads = [
        read_block(_files[block.file], block, lambda lines, at: columns.append((at, lines)))
        for block in blocks
    ]
    return reads, columns
