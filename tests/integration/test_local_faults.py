"""What the local backend can do to its VMs: kill, pause, link conditions."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import orjson
import pytest

from analysis.check import Verdict, check_trial
from analysis.check.accounting import account
from analysis.load import load_trial
from orchestrator.backends.local import LocalBackend, free_port_block
from orchestrator.experiment import Experiment
from orchestrator.faults import parse_faults, parse_network
from orchestrator.plan import plan_trial
from orchestrator.trial import Trial


def run(
    tmp_path: Path, faults: list[dict[str, object]], network: dict[str, object] | None = None
) -> Path:
    experiment = Experiment(
        name="local-faults", rate_range=(4, 6), event_range=5, duration=60, time_scale=10, seed=5,
        faults=parse_faults(faults, 3, None), network=parse_network(network, 3, None),
    )  # fmt: skip
    backends = partial(LocalBackend, base_port=free_port_block(3, 23000))
    result = Trial(plan_trial(experiment, 1), backends, tmp_path).run()
    assert result.ok, result.error
    return result.run_dir.path


@pytest.fixture(scope="module")
def faulty_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    faults = [
        {"kind": "kill", "at": 5, "duration": 10, "target": 1},
        {"kind": "pause", "at": 20, "duration": 30, "target": 2},  # 3 real s: links time out
        {"kind": "loss", "at": 5, "duration": 40, "probability": 0.2},
        {"kind": "duplicate", "at": 5, "duration": 40, "probability": 0.2, "links": [[0, 2]]},
    ]
    network = {"delay": {"dist": "uniform", "low": 0, "high": 0.2}}
    return run(tmp_path_factory.mktemp("runs"), faults, network)


def test_a_run_with_kill_pause_and_link_conditions_is_valid_and_balanced(faulty_run: Path) -> None:
    trial = load_trial(faulty_run)
    result = check_trial(trial)
    assert result.verdict == Verdict.VALID, [str(v) for v in result.examples]
    accounting = account(trial)
    assert accounting.balanced
    lines = [
        orjson.loads(line) for p in (faulty_run / "logs").glob("*.jsonl") for line in p.open("rb")
    ]
    losses = [r for r in lines if r["event"] == "fault" and r["kind"] == "loss"]
    assert accounting.dropped == len(losses) > 0
    assert accounting.duplicated > 0


def test_the_killed_vm_comes_back_as_its_next_incarnation(faulty_run: Path) -> None:
    lines = [orjson.loads(line) for line in (faulty_run / "logs" / "vm1.1.jsonl").open("rb")]
    (ready,) = [r for r in lines if r["event"] == "ready"]
    assert ready["resumed"] is True and lines[0]["event"] == "start"


def test_messages_sent_to_a_long_paused_vm_count_once_even_when_reported_failed(
    faulty_run: Path,
) -> None:
    accounting = account(load_trial(faulty_run))
    assert accounting.failed_delivered > 0  # links to vm2 were declared down, then it woke
    assert accounting.balanced
