"""Clocks run on a recorded trial: Lamport and vector recomputed, HLC, the Bloom clock."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson
import pytest
from runlogs import doctor, find, is_event, records, restart

from analysis.clocks import ClockError, Trace, bloom, hlc, lamport, vector
from analysis.load.runs import load_trial
from vm_node.rundir import RunDir


def test_recomputed_lamport_and_vector_clocks_equal_the_logged_ones(run_dir: Path) -> None:
    trial = load_trial(run_dir)
    trace = Trace.from_trial(trial)
    assert len(trace) > 100 and trace.receive.any()
    assert lamport.mismatches(trial, trace) == []
    assert vector.mismatches(trial, trace) == []
    assert np.array_equal(lamport.recompute(trace), trial.lines.lamport[trace.rows])


def test_recomputation_follows_duplicates_and_lost_messages(
    make_run: Callable[..., Path],
) -> None:
    trial = load_trial(make_run(loss_rate=0.1, duplicate_rate=0.1, seed=3))
    assert lamport.mismatches(trial) == [] and vector.mismatches(trial) == []


def test_recomputation_runs_on_through_a_restarted_vms_incarnations(run_dir: Path) -> None:
    restart(RunDir(run_dir).log_path(1), killed_after=40)
    trial = load_trial(run_dir)
    assert [f.incarnation for f in trial.files if f.vm == 1] == [0, 1]
    assert lamport.mismatches(trial) == [] and vector.mismatches(trial) == []


def test_a_receive_of_a_message_sent_after_it_is_refused_naming_its_line(run_dir: Path) -> None:
    path = RunDir(run_dir).log_path(1)
    line, _ = find(path, is_event("receive"))
    _, last_send = find(path, is_event("send"), -1)
    doctor(path, line, lambda r: r.update({"msg_id": last_send["msg_ids"][0], "from": 1}))
    with pytest.raises(ClockError, match="no causal order") as refused:
        Trace.from_trial(load_trial(run_dir))
    places = str(refused.value).split(" at ")[1].split(" each ")[0].split(", ")
    assert f"{path}:{line}" in places


def test_a_doctored_lamport_clock_is_reported_with_its_line(run_dir: Path) -> None:
    path = RunDir(run_dir).log_path(1)
    line, record = find(path, is_event("internal"), 2)
    doctor(path, line, lambda r: r.update(lamport=r["lamport"] + 5))
    (mismatch,) = lamport.mismatches(load_trial(run_dir))
    assert mismatch.where == f"{path}:{line}"
    assert (mismatch.logged, mismatch.recomputed) == (
        str(record["lamport"] + 5), str(record["lamport"]),
    )  # fmt: skip


def test_a_doctored_vector_clock_is_reported_with_its_line(run_dir: Path) -> None:
    path = RunDir(run_dir).log_path(2)
    line, _ = find(path, is_event("internal"), 4)
    doctor(path, line, lambda r: r["vc"].update({"0": r["vc"]["0"] + 1}))
    (mismatch,) = vector.mismatches(load_trial(run_dir))
    assert mismatch.where == f"{path}:{line}"


def test_a_vm_that_only_counts_its_own_ticks_has_no_lamport_lead(
    make_run: Callable[..., Path],
) -> None:
    trace = Trace.from_trial(load_trial(make_run(rates=(1.0, 1.0, 4.0))))
    lead = lamport.lead(trace, lamport.recompute(trace))
    assert lead.min() >= 0
    fast, slow = trace.vm == 2, trace.vm == 0
    assert lead[fast].max() < lead[slow].max()


def skew(run_dir: Path, vm: int, seconds: float) -> None:
    """Move every timestamp of a VM's log, as a host whose clock is off does."""
    path = RunDir(run_dir).log_path(vm)
    moved = [r | {"timestamp": r["timestamp"] + seconds} for _, r in records(path)]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in moved))


def test_hlc_reads_physical_time_exactly_when_physical_clocks_agree(run_dir: Path) -> None:
    clock = hlc.recompute(Trace.from_trial(load_trial(run_dir)))
    assert np.all(clock.l >= clock.pt)
    assert clock.lead.max() == 0 and clock.c.max() == 0


def test_hlc_stays_within_the_skew_of_physical_time_and_bounds_its_counter(
    run_dir: Path,
) -> None:
    epsilon = 0.5
    skew(run_dir, 2, epsilon)
    trace = Trace.from_trial(load_trial(run_dir))
    clock = hlc.recompute(trace)
    assert np.all(clock.l >= clock.pt)
    assert 0 < clock.lead.max() <= epsilon
    # While l stands still the counter counts events; l moves again within epsilon.
    events_within_epsilon = epsilon * trace.wall_rate.max() + 1
    assert 0 < clock.c.max() <= trace.vms * events_within_epsilon


def test_the_bloom_clock_never_misses_a_happened_before(make_run: Callable[..., Path]) -> None:
    trace = Trace.from_trial(load_trial(make_run(rates=(1.0, 2.0, 3.0, 5.0), seed=11)))
    judged = bloom.judge(trace, pairs=3000)
    ordered = ~judged.concurrent
    assert ordered.sum() > 100 and judged.concurrent.sum() > 100
    assert not judged.missed.any()


def test_the_bloom_clock_orders_every_event_after_its_own_vms_earlier_ones(run_dir: Path) -> None:
    trace = Trace.from_trial(load_trial(run_dir))
    blooms = bloom.recompute(trace)
    (mine,) = np.nonzero(trace.vm == 1)
    assert bloom.says_before(blooms, mine[:-1], mine[1:]).all()


def test_the_bloom_false_positive_rate_is_a_share_and_the_same_for_the_same_seed(
    run_dir: Path,
) -> None:
    trace = Trace.from_trial(load_trial(run_dir))
    first, again = bloom.judge(trace, seed=5), bloom.judge(trace, seed=5)
    assert 0 <= first.false_positive_rate <= 1
    assert first.false_positive_rate == again.false_positive_rate
    assert np.array_equal(first.first, again.first)
