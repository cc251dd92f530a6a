"""8. Frame decode: how long vm_node's Codec takes to turn one line into a checked frame.

The frames are a VM's own `msg` frames of a 3-VM run (real run id, msg_ids
and clocks), decoded by the receiving VM's Codec, which validates every field
and the run, sender, recipient and vector-clock keys. Reference, in the same
run: `orjson.loads` of the same bytes, which parses them and checks nothing.
Each figure is the best of several rounds (the least disturbed by the rest of
the machine).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import orjson

from bench.context import Context
from bench.report import Figure, Section, Target
from vm_node.wire import Codec

NAME = "codec"
TITLE = "Frame decode, one msg frame at a time"
FRAMES = {False: 100_000, True: 10_000}
ROUNDS = {False: 7, True: 3}
TARGET_US = 2.0
RUN = "original-t1-20260101T000000-beef"


def sample_frames(n: int, key: bytes | None) -> list[bytes]:
    """vm1's messages to vm0, as they travel (without the newline)."""
    sender = Codec(RUN, 1, 3, key)
    return [
        sender.message(0, f"1-0-{i}", 1000 + i, {"0": 400 + i, "1": 1000 + i, "2": 7}).rstrip(b"\n")
        for i in range(n)
    ]


def best_us(decode: Callable[[bytes], object], frames: list[bytes], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for line in frames:
            decode(line)
        best = min(best, time.perf_counter() - started)
    return best / len(frames) * 1e6


def run(ctx: Context) -> Section:
    section = Section(
        NAME,
        TITLE,
        columns=("frames", "auth", "Codec.decode (µs)", "orjson.loads (µs)", "ratio"),
    )
    n, rounds = FRAMES[ctx.quick], ROUNDS[ctx.quick]
    data = {}
    for key in (None, b"a per-trial key of 32 bytes....."):
        auth = key is not None
        frames = sample_frames(n, key)
        codec = Codec(RUN, 0, 3, key)
        codec_us = best_us(codec.decode, frames, rounds)
        orjson_us = best_us(orjson.loads, frames, rounds)
        section.add_row(n, "HMAC" if auth else "none", codec_us, orjson_us, codec_us / orjson_us)
        data["hmac" if auth else "plain"] = {"codec_us": codec_us, "orjson_us": orjson_us}
        section.figures.append(
            Figure(
                f"frame decode, one msg frame{' with HMAC' if auth else ''}",
                codec_us,
                "µs",
                reference=orjson_us,
                reference_name="orjson.loads of the same bytes",
                target=None if auth else Target("at_most", TARGET_US, "µs"),
            )
        )
    section.data = data
    section.notes.append(f"best of {rounds} rounds of {n:,} frames; frame bytes: {len(frames[0])}")
    return section
