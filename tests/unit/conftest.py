"""Fixtures for the unit tests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from vmpeer import FakePeer, frame, start_vm


@pytest.fixture
def peer(tmp_path: Path) -> Iterator[FakePeer]:
    """vm0 running and ticking, the test as vm1 (hello and ready already sent)."""
    fake = start_vm(tmp_path)
    fake.send(frame(type="hello") + frame(type="ready", start_at=time.time()))
    fake.wait_for("ready")
    yield fake
    if fake.proc.poll() is None:
        fake.proc.kill()
        fake.proc.wait()
    fake.to_vm.close()
    fake.from_vm.conn.close()
