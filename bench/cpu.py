"""The CPU time of one process over a stretch of wall-clock time, sampled from /proc.

The orchestrator's own CPU while it waits on its VMs: its user + system time
(its children, `docker compose` included, are not counted), read every
INTERVAL seconds, so that the share over any stretch the manifest names
(launched → first tick, first tick → last stop) can be taken afterwards.
"""

from __future__ import annotations

import bisect
import os
import threading
import time

INTERVAL = 0.25  # seconds between samples
TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of `pid`, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(b")") + 2 :].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_S  # fields 14 and 15 of stat(5)


class CpuSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self._pid = pid
        self._stopped = threading.Event()
        self.times: list[float] = []  # wall clock (time.time())
        self.cpu: list[float] = []  # seconds of CPU used by then

    def run(self) -> None:
        while True:
            used = cpu_seconds(self._pid)
            if used is None:
                return
            self.times.append(time.time())
            self.cpu.append(used)
            if self._stopped.wait(INTERVAL):
                return

    def stop(self) -> None:
        self._stopped.set()
        self.join()

    def share(self, start: float | None, end: float | None) -> float | None:
        """CPU seconds per wall second between the samples nearest `start` and `end`."""
        if start is None or end is None or len(self.times) < 2:
            return None
        i = min(bisect.bisect_left(self.times, start), len(self.times) - 1)
        j = min(bisect.bisect_left(self.times, end), len(self.times) - 1)
        if self.times[j] - self.times[i] < 1.0:  # too short to tell at a 10 ms clock tick
            return None
        return (self.cpu[j] - self.cpu[i]) / (self.times[j] - self.times[i])
