"""The cross-host benchmark runs a failed latency round once more, saying why and what the
engines logged about the overlay."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bench import cross_host
from bench.context import Context
from bench.report import Section
from orchestrator.cluster.layout import Layout

ENGINE_LOG = (
    b'level=warning msg="Could not set net.ipv6.conf.all.disable_ipv6"\n'
    b'level=info msg="memberlist: Suspect host1 has failed, no acks received"\n'
    b'level=info msg="Node joined"\n'
)


class Probes:
    """Fails the first `failures` rounds as a probe container that exited 1 does."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def pair(self, server: int, client: int, count: int) -> dict[str, Any]:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError(
                "client exited 1: Traceback ...\nOSError: [Errno 113] No route to host"
            )
        return {"round": self.calls}


def context() -> Context:
    logs = SimpleNamespace(logs=lambda tail: ENGINE_LOG)
    client = SimpleNamespace(containers=SimpleNamespace(get=lambda name: logs))
    return Context(quick=True, work=Path("."), docker=SimpleNamespace(client=client))  # type: ignore[arg-type]


def test_a_failed_round_runs_again_and_is_noted(capsys: pytest.CaptureFixture[str]) -> None:
    probes, section = Probes(failures=1), Section("cross_host", "test", columns=())
    result = cross_host._round(context(), section, Layout(hosts=3), probes, 1, 2, 10)  # type: ignore[arg-type]
    assert result == {"round": 2}
    assert section.notes == [
        "a round from host2 to host1 failed (OSError: [Errno 113] No route to host) and ran again"
    ]
    printed = capsys.readouterr().out
    assert "memberlist: Suspect host1" in printed
    assert "disable_ipv6" not in printed  # not about the overlay


def test_a_round_that_fails_twice_fails_the_benchmark() -> None:
    section = Section("cross_host", "test", columns=())
    with pytest.raises(RuntimeError, match="No route to host"):
        cross_host._round(context(), section, Layout(hosts=3), Probes(failures=2), 1, 2, 10)  # type: ignore[arg-type]
