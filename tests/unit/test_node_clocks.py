"""Reading a node's clock through a reader loop: real processes, no Docker."""

from __future__ import annotations

import sys

from orchestrator.node_clocks import ClockNode, NodeClocks

HERE = ClockNode("here", (0, 1), (sys.executable,))


def test_this_machines_clock_is_read_with_offset_zero_within_its_uncertainty() -> None:
    clocks = NodeClocks([HERE])
    try:
        clocks.measure("start")
        clocks.measure("end")
    finally:
        clocks.close()
    assert not clocks.errors
    assert [(m.node, m.phase, m.vms) for m in clocks.offsets] == [
        ("here", "start", (0, 1)),
        ("here", "end", (0, 1)),
    ]
    for m in clocks.offsets:
        assert abs(m.offset) <= m.uncertainty + 1e-6


def test_a_node_whose_reader_dies_is_named_and_the_others_are_still_read() -> None:
    dead = ClockNode("gone", (2,), (sys.executable, "-c", "import sys; sys.exit('no python here')"))
    missing = ClockNode("absent", (3,), ("/nonexistent/python",))
    clocks = NodeClocks([dead, HERE, missing])
    try:
        clocks.measure("start")
    finally:
        clocks.close()
    assert [m.node for m in clocks.offsets] == ["here"]
    assert set(clocks.errors) == {"gone", "absent"}
    assert "no python here" in clocks.errors["gone"]
    assert clocks.errors["absent"].startswith("start:")
