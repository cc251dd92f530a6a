"""Clock offsets bounded by a trial's messages, and the check's tolerance taken from them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from runlogs import doctor, find, is_event, records

from analysis.check.clocks import Rule, Verdict, check_trial
from analysis.load.runs import load_trial
from analysis.offsets import PairBounds, offset_bounds, placement
from vm_node.rundir import Manifest, NodeOffset, RunDir
from vm_node.sim import SyntheticRun

OFFSETS = (0.0, 0.3, 0.0, -0.1)  # seconds each VM's clock is ahead: `skew:`


def two_nodes(run_dir: Path, nodes: dict[str, tuple[int, ...]]) -> None:
    """Say in the manifest that the VMs ran on these nodes (as the orchestrator measures)."""
    rd = RunDir(run_dir)
    measured = tuple(NodeOffset(name, "start", 0.0, 1e-4, vms) for name, vms in nodes.items())
    rd.write_manifest(rd.read_manifest().with_(node_offsets=measured))


def test_every_pair_is_recovered_within_its_bound(make_run: Callable[..., Path]) -> None:
    run_dir = make_run(rates=(3.0, 5.0, 6.0, 4.0), duration=60.0, clock_offsets=OFFSETS)
    offsets = offset_bounds(run_dir)
    assert offsets.configured.tolist() == list(OFFSETS)
    assert offsets.vms.holds(offsets.configured_difference).all()
    assert np.isfinite(offsets.vms.width).all()
    assert offsets.nodes == ("synthetic",)  # one machine: its VMs differ by their skew alone
    assert np.allclose(offsets.tolerance(), -offsets.configured_difference)


def test_closing_the_bounds_bounds_a_pair_through_a_third_vm() -> None:
    high = np.array([[0.0, 0.1, np.inf], [0.5, 0.0, 0.2], [np.inf, 0.4, 0.0]])
    closed = PairBounds.from_high(high).closed()
    assert closed.high[0, 2] == pytest.approx(0.3)  # off_2 - off_0 <= 0.1 + 0.2
    assert closed.high[2, 0] == pytest.approx(0.9)  # off_0 - off_2 <= 0.4 + 0.5
    assert closed.low[2, 0] == pytest.approx(-0.3)
    assert closed.high[0, 1] == 0.1  # a direct bound no chain beats stays


def test_the_bound_tightens_as_messages_arrive_just_before_a_tick(
    make_run: Callable[..., Path],
) -> None:
    slow = offset_bounds(make_run(rates=(3.0, 4.0, 5.0), duration=60.0, time_scale=1.0))
    fast = offset_bounds(make_run(rates=(200.0, 250.0, 300.0), duration=20.0, time_scale=1.0))
    assert fast.vms.width.max() < slow.vms.width.max()
    assert fast.vms.width.max() <= 0.005  # the simulated wire's 2 ms each way, and a little


def test_a_skewed_trial_is_valid_by_default_and_invalid_with_skew_zero(
    make_run: Callable[..., Path],
) -> None:
    trial = load_trial(make_run(clock_offsets=(0.0, 0.3, 0.0)))
    assert check_trial(trial).verdict is Verdict.VALID
    strict = check_trial(trial, skew=0.0)
    assert strict.verdict is Verdict.INVALID
    assert Rule.SEND_BEFORE_RECEIVE in dict(strict.counts)


def test_on_one_node_a_receive_before_its_send_by_more_than_the_skew_is_caught(
    make_run: Callable[..., Path],
) -> None:
    run_dir = make_run(clock_offsets=(0.0, 0.3, 0.0))
    path = RunDir(run_dir).log_path(0)
    line, record = find(path, lambda r: is_event("receive")(r) and r["from"] == 2)
    sends = [r for _, r in records(RunDir(run_dir).log_path(2)) if r["event"] == "send"]
    sent_at = next(r["timestamp"] for r in sends if record["msg_id"] in r["msg_ids"])
    doctor(path, line, lambda r: r.update(timestamp=sent_at - 0.002))
    result = check_trial(load_trial(run_dir))
    (example,) = [v for v in result.examples if v.rule is Rule.SEND_BEFORE_RECEIVE]
    assert "more than the 0.000000 s the offset between vm2's and vm0's clocks allows" in (
        example.detail
    )


def test_across_nodes_the_logs_bound_the_hosts_clocks(make_run: Callable[..., Path]) -> None:
    run_dir = make_run(rates=(3.0, 4.0, 5.0), duration=60.0, clock_offsets=(0.0, 0.3, 0.3))
    # host b is 0.3 s ahead
    two_nodes(run_dir, {"a": (0,), "b": (1, 2)})
    offsets = offset_bounds(run_dir)
    assert offsets.nodes == ("a", "b")
    assert offsets.node_of.tolist() == [0, 1, 1]
    # the simulated hosts share one clock: 0 once the configured skew is taken out
    assert offsets.hosts.low[0, 1] <= 0.0 <= offsets.hosts.high[0, 1]
    assert offsets.hosts.width[0, 1] < offsets.vms.width[0, 1] + 1e-12
    assert check_trial(load_trial(run_dir)).verdict is Verdict.VALID


def test_across_nodes_a_round_trip_shorter_than_nothing_is_caught(
    make_run: Callable[..., Path],
) -> None:
    run_dir = make_run(rates=(3.0, 4.0, 5.0), duration=60.0, clock_offsets=(0.0, 0.3, 0.3))
    two_nodes(run_dir, {"a": (0,), "b": (1, 2)})
    path = RunDir(run_dir).log_path(0)
    line, _ = find(path, lambda r: is_event("receive")(r) and r["from"] == 1)
    doctor(path, line, lambda r: r.update(timestamp=r["timestamp"] - 1.0))
    result = check_trial(load_trial(run_dir))
    assert result.verdict is Verdict.INVALID
    # the doctored receive, and a message the other way that it can no longer explain
    examples = [v for v in result.examples if v.rule is Rule.SEND_BEFORE_RECEIVE]
    assert f"{path}:{line}" in [v.where for v in examples]
    assert all("the messages between them" in v.detail for v in examples)


@pytest.mark.parametrize(
    ("manifest", "nodes", "node_of"),
    [
        (
            Manifest("e", 1, node_offsets=(NodeOffset("h1", "start", 0, 0, (0, 2)),)),
            ("h1", "unplaced vm1"),
            [0, 1, 0],
        ),
        (
            Manifest("e", 1, backend="swarm", environment={"placement": {"0": "x", "1": "y"}}),
            ("x", "y", "unplaced vm2"),
            [0, 1, 2],
        ),
        (Manifest("e", 1, backend="local"), ("local",), [0, 0, 0]),
        (Manifest("e", 1), ("unplaced vm0", "unplaced vm1", "unplaced vm2"), [0, 1, 2]),
    ],
)
def test_placement_comes_from_the_measured_nodes_the_swarm_or_one_machine(
    manifest: Manifest, nodes: tuple[str, ...], node_of: list[int]
) -> None:
    found, where = placement(manifest, 3)
    assert (found, where.tolist()) == (nodes, node_of)


def test_a_simulated_run_needs_one_clock_offset_per_vm() -> None:
    with pytest.raises(ValueError, match="clock_offsets: 1 given for 3 VMs"):
        SyntheticRun(rates=(1.0, 2.0, 3.0), clock_offsets=(0.3,))
