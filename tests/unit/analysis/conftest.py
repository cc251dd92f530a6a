"""Runs to analyse: small simulated trials, valid unless a test doctors them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from vm_node.sim import SyntheticRun, write_run

SMALL = SyntheticRun(
    rates=(1.0, 2.0, 3.0),
    duration=40.0,
    time_scale=10.0,
    seed=7,
    failure_rate=0.05,
    bad_frame_rate=0.02,
    experiment="small",
)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A valid trial of three VMs, with some failed sends and bad frames."""
    return write_run(SMALL, tmp_path / "runs")


@pytest.fixture
def make_run(tmp_path: Path) -> Callable[..., Path]:
    """A valid trial like `run_dir`, with any SyntheticRun field changed."""

    def make(**changes: Any) -> Path:
        return write_run(msgspec.structs.replace(SMALL, **changes), tmp_path / "runs")

    return make
