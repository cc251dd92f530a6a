"""How far one machine goes: fleets of 3 to 200 VMs on the local backend at time scale 1.

Each fleet runs the original experiment's rules for a minute of real time as a
user would (`clocklab up --backend local --vms N`). Per fleet: the time from
the command's start to the first tick, the worst VM's rate error (which the
trial's own fidelity check judges against 0.01 %), the machine's CPU while
the VMs tick (all cores), the orchestrator's own CPU, and the bytes of an
average log line (a vector clock grows with the fleet).
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.context import Context
from bench.report import Figure, Section
from bench.trials import TrialRun, TrialSpec, run_trial

NAME = "scale"
TITLE = "Scale: fleets of VMs on the local backend at time scale 1"
FLEETS = {False: (3, 10, 50, 100, 200), True: (3, 10)}
SECONDS = {False: 60.0, True: 5.0}
SAMPLE_EVERY = 0.5  # seconds between two looks at the machine's CPU


class MachineCpu(threading.Thread):
    """The whole machine's busy share, from /proc/stat, sampled until stopped."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self._stopped = threading.Event()
        self.samples: list[tuple[float, int, int]] = []  # (wall clock, busy, all) jiffies

    def run(self) -> None:
        while True:
            fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
            idle = fields[3] + fields[4]  # idle + iowait
            self.samples.append((time.time(), sum(fields) - idle, sum(fields)))
            if self._stopped.wait(SAMPLE_EVERY):
                return

    def stop(self) -> None:
        self._stopped.set()
        self.join()

    def busy(self, start: float | None, end: float | None) -> float | None:
        """The share of all cores busy between two wall-clock times."""
        if start is None or end is None:
            return None
        inside = [s for s in self.samples if start <= s[0] <= end]
        if len(inside) < 2:
            return None
        (_, busy0, all0), (_, busy1, all1) = inside[0], inside[-1]
        return (busy1 - busy0) / max(1, all1 - all0)


def bytes_per_line(run: TrialRun) -> float | None:
    logs = sorted((run.run_dir / "logs").glob("*.jsonl"))
    size = sum(p.stat().st_size for p in logs)
    lines = sum(p.read_bytes().count(b"\n") for p in logs)
    return size / lines if lines else None


@dataclass(frozen=True, slots=True)
class Fleet:
    vms: int
    outcome: str
    error: str | None
    start_s: float | None  # command start to first tick
    worst_rate_error_pct: float
    fidelity_held: bool | None
    machine_cpu: float | None  # share of all cores while the VMs tick
    orchestrator_cpu: float | None
    bytes_per_line: float | None


def measure(vms: int, seconds: float, work: Path) -> Fleet:
    spec = TrialSpec(f"bench-scale-{vms}", vms=vms, duration=seconds)
    machine = MachineCpu()
    machine.start()
    try:
        trial = run_trial(spec, "local", work)
    finally:
        machine.stop()
    return Fleet(
        vms=vms,
        outcome=str(trial.manifest.outcome),
        error=trial.manifest.error,
        start_s=trial.start_to_first_tick,
        worst_rate_error_pct=trial.worst_error_pct,
        fidelity_held=trial.manifest.fidelity.get("held"),
        machine_cpu=machine.busy(trial.first_tick_at, trial.last_stop_at),
        orchestrator_cpu=trial.cpu_running,
        bytes_per_line=bytes_per_line(trial),
    )


def run(ctx: Context) -> Section:
    section = Section(
        NAME,
        TITLE,
        columns=(
            "VMs", "outcome", "start → first tick (s)", "worst rate error (%)", "fidelity held",
            "machine CPU ticking (%)", "orchestrator CPU (%)", "bytes / line",
        ),
    )  # fmt: skip
    seconds = SECONDS[ctx.quick]
    fleets = [measure(vms, seconds, ctx.work / "scale") for vms in FLEETS[ctx.quick]]
    for f in fleets:
        held = "—" if f.fidelity_held is None else ("yes" if f.fidelity_held else "no")
        section.add_row(
            f.vms, f.outcome, _num(f.start_s), _num(f.worst_rate_error_pct, 5), held,
            _pct(f.machine_cpu), _pct(f.orchestrator_cpu), _num(f.bytes_per_line, 0),
        )  # fmt: skip
        if f.error:
            section.notes.append(f"{f.vms} VMs: {f.error}")
    section.data["fleets"] = [asdict(f) for f in fleets]
    section.notes.append(f"{seconds:g} s of real time per fleet, one fleet at a time")
    largest = fleets[-1]
    held = "fidelity held" if largest.fidelity_held else "fidelity lost"
    section.figures += [
        Figure(f"{largest.vms} local VMs: command start → first tick", largest.start_s, "s",
               ratio_of="none"),
        Figure(f"{largest.vms} local VMs at time scale 1: worst VM rate error",
               largest.worst_rate_error_pct, "%", ratio_of="none", note=held),
    ]  # fmt: skip
    return section


def _num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _pct(share: float | None) -> str:
    return "—" if share is None else f"{100 * share:.1f}"
