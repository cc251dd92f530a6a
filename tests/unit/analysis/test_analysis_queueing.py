"""The queueing model against cases computed by hand."""

from __future__ import annotations

import pytest

from analysis.metrics import queueing
from analysis.metrics.queueing import ModelError, predict, send_probability


def test_send_probability_counts_one_peer_draws_and_broadcasts() -> None:
    assert send_probability(10, 3) == pytest.approx(0.2)  # r = 1 or 2 to each of 2, r = 3 all
    assert send_probability(10, 5) == pytest.approx(2 / 40 + 1 / 10)
    assert send_probability(5, 3) == pytest.approx(0.4)
    assert send_probability(2, 3) == pytest.approx(0.5)  # no r = 3 when E = 2
    assert send_probability(10, 1) == 0.0


def test_one_fast_vm_floods_two_slow_ones_at_1_2_messages_per_second() -> None:
    slow, fast, other = predict((1, 6, 1), 10)
    for vm in (slow, other):
        assert vm.arrival_rate == pytest.approx(1.2)
        assert vm.receive_share == pytest.approx(1.0)
        assert vm.queue_grows
        assert vm.queue_growth == pytest.approx(0.2)
    assert fast.arrival_rate == pytest.approx(0.0)  # saturated VMs never send
    assert fast.send_share == pytest.approx(0.3)  # r <= 3 on every tick
    assert not fast.queue_grows


def test_equal_rates_receive_on_two_sevenths_of_their_ticks() -> None:
    # rho = 2 * (1 - rho) * 0.2, so rho = 0.4 / 1.4
    for vm in predict((4, 4, 4), 10):
        assert vm.receive_share == pytest.approx(2 / 7)
        assert vm.arrival_rate == pytest.approx(4 * 2 / 7)
        assert vm.send_share == pytest.approx((1 - 2 / 7) * 0.3)
        assert not vm.queue_grows


def test_five_equal_vms_receive_on_three_eighths_of_their_ticks() -> None:
    # p = 0.15, rho = 4 * (1 - rho) * 0.15, so rho = 0.6 / 1.6
    for vm in predict((2, 2, 2, 2, 2), 10):
        assert vm.receive_share == pytest.approx(0.375)


def test_five_vms_with_rates_1_to_5_saturate_only_the_slowest() -> None:
    predictions = predict((1, 2, 3, 4, 5), 10)
    p = 0.15
    rho = [vm.receive_share for vm in predictions]
    for vm in predictions:  # the fixed point holds for every VM
        expected = sum(o.rate * (1 - rho[o.vm]) * p for o in predictions if o.vm != vm.vm)
        assert vm.arrival_rate == pytest.approx(expected)
        assert vm.receive_share == pytest.approx(min(1.0, expected / vm.rate))
    assert [vm.queue_grows for vm in predictions] == [True, False, False, False, False]


def test_a_finite_trial_counts_the_ticks_before_a_queue_takes_off() -> None:
    steady = predict((1, 6, 1), 10)
    minute = predict((1, 6, 1), 10, duration=60)
    hour = predict((1, 6, 1), 10, duration=600)
    assert minute[0].receive_share < hour[0].receive_share < steady[0].receive_share
    assert 0.9 < minute[0].receive_share < 0.99
    assert minute[0].queue_grows and minute[0].arrival_rate == pytest.approx(1.2)


def test_a_stable_queue_in_a_long_trial_approaches_the_steady_share() -> None:
    long = predict((4, 4, 4), 10, duration=2000)
    assert long[0].receive_share == pytest.approx(2 / 7, abs=2e-3)


@pytest.mark.parametrize("rates", [(1, 2, 3), (1, 6, 1), (2.9, 3, 3.1, 1)])
def test_stopping_once_the_chain_settles_changes_no_share(
    rates: tuple[float, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    settled = predict(rates, 4, duration=1500)
    monkeypatch.setattr(queueing, "SETTLED", -1.0)  # follow every tick to the end
    followed = predict(rates, 4, duration=1500)
    for short, full in zip(settled, followed, strict=True):
        assert short.receive_share == pytest.approx(full.receive_share, abs=1e-9)


@pytest.mark.parametrize(
    ("rates", "event_range", "duration", "message"),
    [
        ((), 10, None, "no rates"),
        ((1, 0, 2), 10, None, "rates must be finite and > 0, got 0"),
        ((1, 2), 0, None, "event_range must be >= 1"),
        ((1, 2), 10, -1.0, "duration must be > 0"),
    ],
)
def test_bad_inputs_name_the_problem(
    rates: tuple[float, ...], event_range: int, duration: float | None, message: str
) -> None:
    with pytest.raises(ModelError, match=message):
        predict(rates, event_range, duration)
