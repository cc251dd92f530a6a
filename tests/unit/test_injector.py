from pathlib import Path
from typing import Any

import orjson
import pytest

from orchestrator.backends import check_schedule
from orchestrator.errors import ConfigError
from orchestrator.events import Level
from orchestrator.faults import parse_faults
from orchestrator.injector import FaultFailed, FaultInjector


class Recorder:
    """A backend that is its own fault part, and records what it is asked to do."""

    name = "docker"

    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []
        self.fault_parts = (self,)

    def kill(self, vm: int) -> None:
        self.calls.append(("kill", vm))

    def restart(self, vm: int) -> None:
        self.calls.append(("restart", vm))

    def pause(self, vm: int) -> None:
        self.calls.append(("pause", vm))

    def unpause(self, vm: int) -> None:
        self.calls.append(("unpause", vm))

    def partition(self, groups: tuple[tuple[int, ...], ...]) -> None:
        self.calls.append(("partition", groups))

    def heal(self) -> None:
        self.calls.append(("heal",))


SCHEDULE = [
    {"kind": "kill", "at": 10, "duration": 10, "target": 1},
    {"kind": "partition", "at": 20, "duration": 10, "groups": [[0], [1, 2]]},
    {"kind": "loss", "at": 5, "duration": 50, "probability": 0.1},
]


def test_faults_happen_at_their_simulated_times_scaled_to_wall_clock(tmp_path: Path) -> None:
    target = Recorder()
    log = tmp_path / "orchestrator.log"
    injector = FaultInjector(parse_faults(SCHEDULE, 3, None), (target,), log)
    injector.arm(start_at=1000.0, time_scale=10)  # simulated 10 s = 1 real s
    injector.run_due(now=1000.99)
    assert target.calls == []
    injector.run_due(now=1001.0)
    assert target.calls == [("kill", 1)] and injector.down == {1}
    injector.run_due(now=1002.0)  # the restart comes before the partition at the same moment
    assert target.calls[1:] == [("restart", 1), ("partition", ((0,), (1, 2)))]
    assert injector.down == set()
    injector.run_due(now=1006.0)
    assert target.calls[-1] == ("heal",) and injector.next_due() is None


def test_every_fault_is_recorded_with_its_start_and_end(tmp_path: Path) -> None:
    log = tmp_path / "orchestrator.log"
    injector = FaultInjector(parse_faults(SCHEDULE, 3, None), (Recorder(),), log)
    injector.arm(start_at=0.0, time_scale=1)
    injector.run_due(now=100.0)
    assert all(
        r.start is not None and r.end is not None and r.start <= r.end for r in injector.records
    )
    events = [orjson.loads(line)["event"] for line in log.read_bytes().splitlines()]
    assert events.count("fault_begin") == events.count("fault_end") == 3


def test_a_trial_cut_short_unpauses_a_paused_vm(tmp_path: Path) -> None:
    target = Recorder()
    pause = [{"kind": "pause", "at": 1, "duration": 50, "target": 2}]
    injector = FaultInjector(parse_faults(pause, 3, None), (target,), tmp_path / "orchestrator.log")
    injector.arm(start_at=0.0, time_scale=1)
    injector.run_due(now=2.0)
    injector.finish()
    assert target.calls == [("pause", 2), ("unpause", 2)]


class Broken(Recorder):
    """Every kill fails, as on a container that is gone."""

    def kill(self, vm: int) -> None:
        raise RuntimeError("no such container")


def test_a_fault_that_fails_fails_the_trial_recorded_logged_and_said_aloud(
    tmp_path: Path,
) -> None:
    target, said = Broken(), list[Any]()
    log = tmp_path / "orchestrator.log"
    injector = FaultInjector(parse_faults(SCHEDULE, 3, None), (target,), log, said.append)
    injector.arm(start_at=0.0, time_scale=1)
    with pytest.raises(FaultFailed, match=r"faults\[0\] \(kill vm1 at 10 s\) failed to begin"):
        injector.run_due(now=100.0)
    assert injector.records[0].errors == ("begin: no such container",)
    assert [n.level for n in said] == [Level.WARNING] and "no such container" in said[0].text
    lines = [orjson.loads(x) for x in log.read_bytes().splitlines()]
    (kill,) = [line for line in lines if line["kind"] == "kill"]
    assert kill["event"] == "fault_begin" and kill["error"] == "begin: no such container"


def test_a_vm_whose_kill_failed_is_never_started_again(tmp_path: Path) -> None:
    target = Broken()
    kill = [{"kind": "kill", "at": 1, "duration": 5, "target": 1}]
    injector = FaultInjector(parse_faults(kill, 3, None), (target,), tmp_path / "orch.log")
    injector.arm(start_at=0.0, time_scale=1)
    with pytest.raises(FaultFailed):
        injector.run_due(now=1.0)
    assert injector.down == set()
    injector.run_due(now=10.0)  # the end, had the trial gone on
    injector.finish()
    assert ("restart", 1) not in target.calls and target.calls == []


def test_a_failed_unpause_at_the_end_of_a_cut_short_trial_is_recorded_not_raised(
    tmp_path: Path,
) -> None:
    class Stuck(Recorder):
        def unpause(self, vm: int) -> None:
            raise RuntimeError("container is not paused")

    target, said = Stuck(), list[Any]()
    pause = [{"kind": "pause", "at": 1, "duration": 50, "target": 2}]
    injector = FaultInjector(
        parse_faults(pause, 3, None), (target,), tmp_path / "orch.log", said.append
    )
    injector.arm(start_at=0.0, time_scale=1)
    injector.run_due(now=2.0)
    injector.finish()  # runs before teardown: must not raise
    assert injector.records[0].errors == ("end: container is not paused",)
    assert len(said) == 1


class HostRecorder(Recorder):
    name = "swarm"

    def cut_off_host(self, host: int) -> None:
        self.calls.append(("cut_off_host", host))

    def reconnect_host(self, host: int) -> None:
        self.calls.append(("reconnect_host", host))

    def crash_host(self, host: int) -> tuple[int, ...]:
        self.calls.append(("crash_host", host))
        return (host, host + 3)  # VMs i on host i mod 3

    def restart_host(self, host: int) -> None:
        self.calls.append(("restart_host", host))


def test_a_host_partition_cuts_the_host_off_and_reconnects_it_and_is_recorded(
    tmp_path: Path,
) -> None:
    schedule = [{"kind": "host_partition", "at": 10, "duration": 5, "host": 2}]
    target = HostRecorder()
    injector = FaultInjector(parse_faults(schedule, 6, None), (target,), tmp_path / "orch.log")
    injector.arm(start_at=0.0, time_scale=1)
    injector.run_due(now=12.0)
    assert target.calls == [("cut_off_host", 2)]
    injector.run_due(now=15.0)
    assert target.calls == [("cut_off_host", 2), ("reconnect_host", 2)]
    record = injector.records[0]
    assert record.host == 2 and record.start is not None and record.end is not None
    assert record.errors == ()


def test_a_crashed_hosts_vms_count_as_down_until_the_host_is_back(tmp_path: Path) -> None:
    schedule = [{"kind": "host_crash", "at": 10, "duration": 5, "host": 1}]
    target = HostRecorder()
    injector = FaultInjector(parse_faults(schedule, 6, None), (target,), tmp_path / "orch.log")
    injector.arm(start_at=0.0, time_scale=1)
    injector.run_due(now=10.0)
    assert target.calls == [("crash_host", 1)] and injector.down == {1, 4}
    injector.run_due(now=15.0)
    assert target.calls[-1] == ("restart_host", 1) and injector.down == set()
    lines = [orjson.loads(line) for line in (tmp_path / "orch.log").read_bytes().splitlines()]
    assert [(line["event"], line["host"]) for line in lines] == [
        ("fault_begin", 1),
        ("fault_end", 1),
    ]


def test_a_host_fault_on_a_backend_without_hosts_is_refused_before_start_naming_it() -> None:
    faults = parse_faults([{"kind": "host_crash", "at": 1, "duration": 1, "host": 0}], 3, None)
    backend = Recorder()
    with pytest.raises(
        ConfigError, match=r"faults\[0\]\.kind: the docker backend cannot host_crash"
    ):
        check_schedule(faults, 3, backend)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="needs the swarm backend on a simulated cluster"):
        check_schedule(faults, 3, backend)  # type: ignore[arg-type]
    check_schedule(faults, 3, HostRecorder())  # type: ignore[arg-type]
