"""Network cuts without Docker: which VMs get rules, what the helpers are asked to run."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.backends.netcut import (
    CHAIN,
    LABEL_HELPER,
    NetworkCutter,
    Target,
    partition_drops,
)
from orchestrator.errors import TrialError


class FakeHelper:
    def __init__(self, engine: FakeEngine, kwargs: dict[str, Any]) -> None:
        self.engine, self.kwargs = engine, kwargs
        self.scripts: list[str] = []
        self.removed = False

    def exec_run(self, command: list[str]) -> tuple[int, bytes]:
        script = command[-1]
        self.scripts.append(script)
        if self.engine.broken and "restore" in script:
            return 4, b"iptables-restore: line 3 failed"
        return 0, b"nft\n" if script.startswith("for v in") else b""

    def remove(self, force: bool) -> None:
        self.removed = True


class FakeEngine:
    """A node's engine as the cutter uses it: `containers.run` makes a helper."""

    def __init__(self, broken: bool = False) -> None:
        self.broken = broken
        self.helpers: list[FakeHelper] = []
        engine = self

        class Containers:
            def run(self, image: str, **kwargs: Any) -> FakeHelper:
                helper = FakeHelper(engine, {"image": image, **kwargs})
                engine.helpers.append(helper)
                return helper

        self.containers = Containers()

    def beside(self, container: str) -> FakeHelper:
        (helper,) = [
            h
            for h in self.helpers
            if h.kwargs["network_mode"] == f"container:{container}" and not h.removed
        ]
        return helper


def test_every_group_but_the_largest_drops_the_vms_outside_it() -> None:
    assert partition_drops(((0, 1), (2, 3))) == {2: [0, 1], 3: [0, 1]}
    assert partition_drops(((0,), (1, 2, 3), (4,))) == {0: [1, 2, 3, 4], 4: [0, 1, 2, 3]}


def test_a_cut_drops_the_addresses_both_ways_beside_each_target_and_heal_flushes_it() -> None:
    engine = FakeEngine()
    cutter = NetworkCutter("sha256:vm", {"clocklab.run": "r1"})
    a, b = Target(2, engine, "c2"), Target(3, engine, "c3")
    cutter.prepare([a, b])
    helper = engine.beside("c2")
    assert helper.kwargs["image"] == "sha256:vm" and helper.kwargs["user"] == "0"
    assert helper.kwargs["cap_add"] == ["NET_ADMIN", "NET_RAW"]
    assert helper.kwargs["labels"] == {"clocklab.run": "r1", LABEL_HELPER: "2"}
    assert f"-I INPUT -j {CHAIN}" in helper.scripts[0]  # hooked once, at setup

    cutter.cut({a: ["10.0.0.10", "10.0.0.11"], b: ["10.0.0.10", "10.0.0.11"]})
    cut = helper.scripts[-1]
    assert "iptables-nft-restore --noflush" in cut
    for rule in ("-s 10.0.0.10 -j DROP", "-d 10.0.0.10 -j DROP", "-d 10.0.0.11 -j DROP"):
        assert rule in cut
    assert len(engine.helpers) == 2  # made ahead, not again at the cut

    cutter.heal()
    assert helper.scripts[-1] == f"iptables-nft -F {CHAIN}"
    assert engine.beside("c3").scripts[-1] == f"iptables-nft -F {CHAIN}"
    cutter.remove()
    assert all(h.removed for h in engine.helpers)


def test_a_vm_started_again_during_a_cut_gets_a_new_helper_and_the_cut_again() -> None:
    engine = FakeEngine()
    cutter = NetworkCutter("vm", {})
    cutter.cut({Target(1, engine, "c1"): ["10.0.0.10"]})
    old = engine.beside("c1")
    cutter.renew(Target(1, engine, "c1"))
    assert old.removed
    new = engine.beside("c1")
    assert new is not old and "-d 10.0.0.10 -j DROP" in new.scripts[-1]


def test_a_helper_beside_an_earlier_container_is_replaced() -> None:
    engine = FakeEngine()
    cutter = NetworkCutter("vm", {})
    cutter.prepare([Target(1, engine, "first")])
    cutter.cut({Target(1, engine, "second"): ["10.0.0.10"]})  # a new task on swarm
    assert engine.helpers[0].removed
    assert "-s 10.0.0.10 -j DROP" in engine.beside("second").scripts[-1]


def test_iptables_failing_beside_a_vm_is_an_error_naming_it() -> None:
    cutter = NetworkCutter("vm", {})
    with pytest.raises(TrialError, match=r"vm4: iptables failed .* line 3 failed"):
        cutter.cut({Target(4, FakeEngine(broken=True), "c4"): ["10.0.0.10"]})
