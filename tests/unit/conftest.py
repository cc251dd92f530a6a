"""Fixtures for the unit tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from vmpeer import FakePeer, frame, start_vm

# What asyncio reports of work a VM left behind: it must never say these.
LEFT_BEHIND = ("never retrieved", "was never awaited", "Task was destroyed but it is pending")


def _close(fake: FakePeer) -> None:
    if fake.proc.poll() is None:
        fake.proc.kill()
        fake.proc.wait()
    fake.to_vm.close()
    fake.from_vm.conn.close()
    stderr = fake.stderr()
    assert not any(s in stderr for s in LEFT_BEHIND), stderr


@pytest.fixture
def make_peer(tmp_path: Path) -> Iterator[Callable[..., FakePeer]]:
    """Starts vm0 with extra flags, ticking, the test as vm1 (hello and ready sent)."""
    started: list[FakePeer] = []

    def make(*flags: str, asyncio_debug: bool = True) -> FakePeer:
        log_dir = tmp_path / f"vm{len(started)}"
        log_dir.mkdir()
        fake = start_vm(log_dir, *flags, asyncio_debug=asyncio_debug)
        started.append(fake)
        fake.send(frame(type="hello") + frame(type="ready", start_at=time.time()))
        fake.wait_for("ready")
        return fake

    yield make
    for fake in started:
        _close(fake)


@pytest.fixture
def peer(make_peer: Callable[..., FakePeer]) -> FakePeer:
    """vm0 running and ticking, the test as vm1 (hello and ready already sent)."""
    return make_peer()
