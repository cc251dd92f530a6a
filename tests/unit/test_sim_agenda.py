"""The simulator's agenda: one order for events, whatever order they were pushed in."""

from __future__ import annotations

from vm_node.sim.agenda import ARRIVAL, FAULT_BEGIN, LINK_UP, TICK, Agenda


def test_events_run_by_time_then_kind_then_the_order_they_were_pushed() -> None:
    agenda = Agenda(now=100.0)
    agenda.push(101.0, TICK, 0, "tick at 101")
    agenda.push(100.5, FAULT_BEGIN, -1, "fault")
    agenda.push(100.5, TICK, 1, "first tick")
    agenda.push(100.5, TICK, 2, "second tick")
    agenda.push(100.5, ARRIVAL, 0, "arrival")
    taken = []
    while agenda:
        taken.append(agenda.pop()[2])
        assert agenda.now in (100.5, 101.0)
    assert taken == ["arrival", "first tick", "second tick", "fault", "tick at 101"]
    assert agenda.now == 101.0


def test_take_removes_only_the_events_it_picks_and_the_rest_keep_their_order() -> None:
    agenda = Agenda(now=0.0)
    for at in (3.0, 1.0, 2.0, 4.0):
        agenda.push(at, TICK, int(at) % 2, at)
    agenda.push(2.5, LINK_UP, 1, (1, 0))
    taken = agenda.take(lambda event: event[1] == TICK and event[3] == 1)
    assert sorted(event[0] for event in taken) == [1.0, 3.0]
    assert [agenda.pop()[2] for _ in range(3)] == [2.0, (1, 0), 4.0]
    assert not agenda
    assert agenda.take(lambda event: True) == []
