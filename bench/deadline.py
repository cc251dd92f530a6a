"""The physical reference for timing fidelity: a bare asyncio loop sleeping until
absolute deadlines, and nothing else (no clocks, no log, no network).

`python -m bench.deadline --rates 1000,3000,6000 --seconds 10` forks one child
process per rate (as a trial has one process per VM), all from one shared
start time, and prints one JSON object: per child the rate and the wall-clock
time of every tick. It needs only the standard library, so it runs unchanged
inside the VM image.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sys
import time
from multiprocessing.connection import Connection

START_DELAY = 0.5  # seconds from now to the shared start: the children need to start


async def tick_times(rate: float, ticks: int, start_at: float) -> list[float]:
    """Sleep until start_at + k / rate for every k, as vm_node's tick loop does."""
    loop = asyncio.get_running_loop()
    period = 1.0 / rate
    origin = loop.time() + (start_at - time.time())
    times = []
    for k in range(ticks):
        await asyncio.sleep(max(origin + k * period - loop.time(), 0.0))
        times.append(time.time())
    return times


def _child(rate: float, seconds: float, start_at: float, out: Connection) -> None:
    times = asyncio.run(tick_times(rate, max(1, round(rate * seconds)), start_at))
    out.send({"rate": rate, "start_at": start_at, "times": times})


def run_children(rates: list[float], seconds: float) -> dict[str, object]:
    """One forked process per rate (this module may run from `python -c`: no re-import)."""
    fork = multiprocessing.get_context("fork")
    start_at = time.time() + START_DELAY
    pipes = [fork.Pipe(duplex=False) for _ in rates]
    children = [
        fork.Process(target=_child, args=(rate, seconds, start_at, sender))
        for rate, (_, sender) in zip(rates, pipes, strict=True)
    ]
    for child in children:
        child.start()
    results = [receiver.recv() for receiver, _ in pipes]
    for child in children:
        child.join()
    return {"start_at": start_at, "loops": results}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.deadline", description=__doc__)
    parser.add_argument("--rates", required=True, help="real ticks per second, comma-separated")
    parser.add_argument("--seconds", type=float, required=True, help="real seconds to run")
    args = parser.parse_args(argv)
    rates = [float(r) for r in args.rates.split(",")]
    json.dump(run_children(rates, args.seconds), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
