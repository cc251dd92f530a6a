import random

import pytest

from vm_node.conditions import ConditionError, LinkCondition, LinkConditions


def conditions(*specs: dict[str, object], me: int = 0, seed: int = 1) -> LinkConditions:
    parsed = [LinkCondition.from_json(spec, f"[{i}]", vms=3) for i, spec in enumerate(specs)]
    return LinkConditions(parsed, me, random.Random(seed))


def test_without_conditions_a_message_goes_once_at_once() -> None:
    delivery = conditions().delivery(to=1, now=5.0)
    assert delivery.delays == (0.0,) and not delivery.lost


def test_a_certain_loss_inside_its_window_loses_every_message() -> None:
    c = conditions({"kind": "loss", "start": 10, "end": 20, "probability": 1.0})
    assert c.delivery(1, 15.0).lost
    assert not c.delivery(1, 9.9).lost and not c.delivery(1, 20.0).lost


def test_a_certain_duplication_sends_two_copies() -> None:
    assert conditions({"kind": "duplicate", "probability": 1.0}).delivery(2, 0.0).duplicated


def test_a_condition_on_one_link_leaves_the_others_alone() -> None:
    c = conditions({"kind": "loss", "probability": 1.0, "links": [[0, 2]]})
    assert c.delivery(2, 1.0).lost and not c.delivery(1, 1.0).lost


def test_delays_add_up_and_each_copy_draws_its_own() -> None:
    c = conditions(
        {"kind": "delay", "delay": {"dist": "constant", "value": 0.5}},
        {"kind": "delay", "delay": {"dist": "uniform", "low": 1.0, "high": 2.0}},
        {"kind": "duplicate", "probability": 1.0},
    )
    first, second = c.delivery(1, 0.0).delays
    assert 1.5 <= first <= 2.5 and 1.5 <= second <= 2.5 and first != second


def test_exponential_delays_have_the_configured_mean() -> None:
    c = conditions({"kind": "delay", "delay": {"dist": "exponential", "mean": 0.2}})
    delays = [c.delivery(1, 0.0).delays[0] for _ in range(20_000)]
    assert sum(delays) / len(delays) == pytest.approx(0.2, rel=0.05)


def test_the_same_seed_replays_the_same_fates() -> None:
    def fates(seed: int) -> list[bool]:
        c = conditions({"kind": "loss", "probability": 0.5}, seed=seed)
        return [c.delivery(1, 0.0).lost for _ in range(200)]

    assert fates(9) == fates(9)
    assert fates(9) != fates(10)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"kind": "jitter"}, "[0].kind"),
        ({"kind": "loss", "probability": 1.5}, "[0].probability"),
        ({"kind": "loss", "probability": True}, "[0].probability"),
        ({"kind": "loss", "probability": 0.1, "start": -1}, "[0].start"),
        ({"kind": "loss", "probability": 0.1, "start": 5, "end": 5}, "[0].end"),
        ({"kind": "loss", "probability": 0.1, "links": [[0, 0]]}, "[0].links[0]"),
        ({"kind": "loss", "probability": 0.1, "links": [[0, 3]]}, "[0].links[0]"),
        ({"kind": "delay", "delay": {"dist": "normal"}}, "[0].delay.dist"),
        ({"kind": "delay", "delay": {"dist": "constant"}}, "[0].delay.value"),
        ({"kind": "delay", "delay": {"dist": "exponential", "mean": 0}}, "[0].delay.mean"),
        ({"kind": "delay", "delay": {"dist": "constant", "value": 1, "mean": 2}}, "[0].delay.mean"),
    ],
)
def test_a_bad_condition_names_its_field(spec: dict[str, object], field: str) -> None:
    with pytest.raises(ConditionError) as info:
        LinkCondition.from_json(spec, "[0]", vms=3)
    assert info.value.field == field


def test_a_condition_survives_its_round_trip_through_json() -> None:
    spec = {
        "kind": "delay",
        "start": 1.0,
        "end": 2.0,
        "links": [[0, 1]],
        "delay": {"dist": "uniform", "low": 0.1, "high": 0.2},
    }
    assert LinkCondition.from_json(spec, "x").to_json() == spec
