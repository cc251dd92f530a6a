"""Metrics on a hand-computed two-VM log, and on simulated runs where the answer is known."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from runlogs import write_logs

from analysis.check.clocks import Verdict, check_trial
from analysis.load.runs import load_trial
from analysis.metrics.traces import traces
from analysis.metrics.trial import TrialMetrics, trial_metrics
from vm_node.rundir import Manifest, Outcome, RunDir
from vm_node.sim import SyntheticRun, write_run

T0 = 1000.0


def line(
    event: str, at: float, lamport: int, vc: list[int], queue: int = 0, **fields: Any
) -> dict[str, Any]:
    return {
        "event": event,
        "timestamp": T0 + at,
        "lamport": lamport,
        "vc": {str(j): n for j, n in enumerate(vc)},
        "queue_len": queue,
        **fields,
    }


def edges(vm: int, rate: float) -> list[dict[str, Any]]:
    config = {
        "vm": vm,
        "vms": 2,
        "rate": rate,
        "time_scale": 1.0,
        "duration": 3.0,
        "start_at": None,
    }
    return [
        line("start", -1.0, 0, [0, 0], config=config),
        line("ready", -0.5, 0, [0, 0], start_at=T0),
    ]


def stop(
    at: float, lamport: int, vc: list[int], ticks: int, sent: int, received: int
) -> dict[str, Any]:
    return line("stop", at, lamport, vc, ticks=ticks, sent=sent, received=received, dropped=0)


@pytest.fixture
def hand(tmp_path: Path) -> Path:
    """vm0 ticks 4/s, vm1 1/s (its second tick 0.1 s late); clocks worked out by hand."""
    vm0 = [
        *edges(0, 4.0),
        line("internal", 0.00, 1, [1, 0], tick=0),
        line("internal", 0.25, 2, [2, 0], tick=1),
        line("send", 0.50, 3, [3, 0], tick=2, to=[1], msg_ids=["0-0-1"]),
        line("internal", 0.75, 4, [4, 0], tick=3),
        line("send", 1.00, 5, [5, 0], tick=4, to=[1], msg_ids=["0-0-2"]),
        line(
            "receive", 1.25, 6, [6, 1], tick=5, msg_id="1-0-1", msg_lamport=1, jump=1, **{"from": 1}
        ),
        stop(1.5, 6, [6, 1], ticks=6, sent=2, received=1),
    ]
    vm1 = [
        *edges(1, 1.0),
        line("send", 0.0, 1, [0, 1], tick=0, to=[0], msg_ids=["1-0-1"]),
        line(
            "receive",
            1.1,
            4,
            [3, 2],
            1,
            tick=1,
            msg_id="0-0-1",
            msg_lamport=3,
            jump=3,
            **{"from": 0},
        ),
        line(
            "receive",
            2.0,
            6,
            [5, 3],
            0,
            tick=2,
            msg_id="0-0-2",
            msg_lamport=5,
            jump=2,
            **{"from": 0},
        ),
        stop(2.5, 6, [5, 3], ticks=3, sent=1, received=2),
    ]
    return write_logs(
        tmp_path / "hand" / "trial-1",
        {0: vm0, 1: vm1},
        Manifest(experiment="hand", trial=1, outcome=Outcome.COMPLETED),
    )


def metrics_of(run_dir: Path) -> TrialMetrics:
    trial = load_trial(run_dir)
    return trial_metrics(trial, traces(trial))


def test_the_hand_made_log_is_itself_valid(hand: Path) -> None:
    result = check_trial(load_trial(hand))
    assert result.verdict is Verdict.VALID, [str(v) for v in result.examples]


def test_achieved_rates_are_the_least_squares_fit_of_tick_times(hand: Path) -> None:
    vm0, vm1 = metrics_of(hand).vms
    assert vm0.achieved == pytest.approx(4.0)
    assert vm1.achieved == pytest.approx(1.0)  # ticks at 0, 1.1, 2.0 s: slope exactly 1 s


def test_event_counts_and_shares_count_each_kind_of_tick(hand: Path) -> None:
    vm0, vm1 = metrics_of(hand).vms
    assert (vm0.ticks, vm0.internal, vm0.send, vm0.receive) == (6, 3, 2, 1)
    assert (vm1.ticks, vm1.internal, vm1.send, vm1.receive) == (3, 0, 1, 2)
    assert vm0.share(vm0.internal) == 0.5


def test_jumps_are_summarised_over_receives_only(hand: Path) -> None:
    vm0, vm1 = metrics_of(hand).vms
    assert (vm0.jump_mean, vm0.jump_p95, vm0.jump_max) == (1.0, 1.0, 1.0)
    assert (vm1.jump_mean, vm1.jump_p95, vm1.jump_max) == (2.5, pytest.approx(2.95), 3.0)


def test_queue_length_is_summarised_after_each_tick(hand: Path) -> None:
    _, vm1 = metrics_of(hand).vms
    assert (vm1.queue_mean, vm1.queue_max, vm1.queue_final) == (pytest.approx(1 / 3), 1, 0)
    assert not vm1.queue_unbounded


def test_drift_is_the_fastest_clock_minus_each_clock_over_time(hand: Path) -> None:
    m = metrics_of(hand)
    vm0, vm1 = m.vms
    assert m.fastest == 0
    assert (vm0.lag_max, vm0.lag_final) == (0.0, 0.0)
    assert (vm1.lag_max, vm1.lag_final) == (4.0, 0.0)  # 5 - 1 between 1.0 and 1.1 s
    (pair,) = m.pairs
    assert (pair.a, pair.b, pair.max_abs, pair.final) == (0, 1, 4.0, 0.0)


def test_every_message_is_accounted_for(hand: Path) -> None:
    a = metrics_of(hand).accounting
    assert (a.sent, a.received, a.failed, a.queued, a.lost, a.duplicated, a.unknown) == (
        3,
        3,
        0,
        0,
        0,
        0,
        0,
    )
    assert a.balanced and a.vanished == 0


def test_messages_left_in_an_inbox_are_still_queued_and_the_books_balance(
    make_run: Callable[..., Path],
) -> None:
    a = metrics_of(make_run(rates=(1.0, 6.0, 6.0), duration=60.0)).accounting
    slow = a.receivers[0]
    assert slow.queued > 0 and slow.lost == 0
    assert slow.sent_to == slow.received + slow.failed + slow.queued
    assert a.balanced and a.queued == sum(r.queued for r in a.receivers)


def test_messages_whose_receives_left_no_trace_have_vanished(run_dir: Path) -> None:
    path = RunDir(run_dir).log_path(0)
    kept = [raw for raw in path.read_bytes().splitlines() if b'"event":"receive"' not in raw]
    path.write_bytes(b"\n".join(kept) + b"\n")
    a = metrics_of(run_dir).accounting
    vm0 = a.receivers[0]
    assert vm0.received == 0 and vm0.lost == 0
    assert vm0.vanished == vm0.sent_to - vm0.failed - vm0.queued > 0
    assert not a.balanced and len(a.unexplained) == vm0.vanished


def test_a_message_received_twice_without_a_duplicate_condition_is_unexplained(
    run_dir: Path,
) -> None:
    path = RunDir(run_dir).log_path(2)
    raw = path.read_bytes().splitlines()
    receives = [i for i, r in enumerate(raw) if b'"event":"receive"' in r]
    first_id = raw[receives[0]].split(b'"msg_id":')[1].split(b",")[0]
    second_id = raw[receives[1]].split(b'"msg_id":')[1].split(b",")[0]
    raw[receives[1]] = raw[receives[1]].replace(second_id, first_id)
    path.write_bytes(b"\n".join(raw) + b"\n")
    a = metrics_of(run_dir).accounting
    assert a.duplicated == 0 and a.vanished == 1  # the message it replaced has no fate
    assert sorted(u.rule.value for u in a.unexplained) == ["surplus", "vanished"]


def test_a_slow_vm_flooded_by_fast_ones_has_a_queue_that_grows_without_bound(
    make_run: Callable[..., Path],
) -> None:
    m = metrics_of(make_run(rates=(1.0, 6.0, 6.0), duration=60.0, failure_rate=0.0))
    slow, fast, other = m.vms
    assert slow.queue_unbounded and slow.queue_final > 20
    assert not fast.queue_unbounded and not other.queue_unbounded
    assert slow.jump_mean > fast.jump_mean


def test_lag_is_measured_against_the_vm_with_the_highest_rate(
    make_run: Callable[..., Path],
) -> None:
    m = metrics_of(make_run(rates=(2.0, 5.0, 1.0)))
    assert m.fastest == 1
    assert m.vms[1].lag_max == 0.0
    assert np.isfinite(m.vms[2].lag_slope)


def test_lag_compares_the_vms_at_one_true_moment_whatever_their_clocks_read(
    tmp_path: Path,
) -> None:
    spec = SyntheticRun(rates=(6.0, 2.0, 4.0), duration=40.0, time_scale=10.0, seed=3)
    plain = load_trial(write_run(spec, tmp_path / "plain"))
    offsets = (-0.3, 0.3, 0.0)
    skewed = load_trial(write_run(msgspec.structs.replace(spec, clock_offsets=offsets), tmp_path))
    for mine, theirs, offset in zip(traces(skewed).vms, traces(plain).vms, offsets, strict=True):
        assert np.allclose(mine.timestamp - theirs.timestamp, offset)  # what each VM read
        assert mine.time == pytest.approx(theirs.time, abs=1e-6)  # when it happened
    lags = [vm.lag_mean for vm in trial_metrics(skewed, traces(skewed)).vms]
    assert lags == pytest.approx([vm.lag_mean for vm in trial_metrics(plain, traces(plain)).vms])
    assert min(lags) == 0.0  # the fastest VM, vm0, whose clock reads 0.3 s behind
