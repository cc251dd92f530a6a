"""Container exits as the engine's event stream reports them."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from typing import Any

from orchestrator.exits import ContainerExits

END = object()


class FakeStream:
    """Events fed by the test; iteration blocks until the next one, as the engine's does."""

    def __init__(self) -> None:
        self.events: queue.Queue[Any] = queue.Queue()
        self.closed = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while (event := self.events.get()) is not END:
            yield event

    def close(self) -> None:
        self.closed = True
        self.events.put(END)


class FakeClient:
    def __init__(self) -> None:
        self.stream = FakeStream()
        self.filters: dict[str, Any] = {}

    def events(self, decode: bool, filters: dict[str, Any]) -> FakeStream:
        self.filters = filters
        return self.stream


def event(action: str, vm: str | None, code: int = 0) -> dict[str, Any]:
    attributes = {"exitCode": str(code)} if action == "die" else {}
    if vm is not None:
        attributes["clocklab.vm"] = vm
    return {"Action": action, "Actor": {"ID": f"c{vm}", "Attributes": attributes}}


def settle(exits: ContainerExits, stream: FakeStream, *events: dict[str, Any]) -> None:
    for e in events:
        exits.changed.clear()
        stream.events.put(e)
        assert exits.changed.wait(5), f"no change seen after {e}"


def test_starts_and_dies_give_each_vm_its_exit_code_and_its_container() -> None:
    client = FakeClient()
    exits = ContainerExits(client, "com.docker.compose.project=p")
    settle(exits, client.stream, event("start", "0"), event("start", "1"), event("die", "1", 137))
    assert exits.codes() == {0: None, 1: 137}
    assert exits.container_id(1) == "c1"
    settle(exits, client.stream, event("start", "1"))  # restarted
    assert exits.codes() == {0: None, 1: None}
    assert client.filters["label"] == "com.docker.compose.project=p"
    exits.close()
    assert client.stream.closed


def test_containers_without_a_vm_label_are_ignored() -> None:
    client = FakeClient()
    exits = ContainerExits(client, "x=y")
    client.stream.events.put(event("start", None))
    settle(exits, client.stream, event("die", "2", 1))
    assert exits.codes() == {2: 1}
    exits.close()


def test_a_stream_that_ends_before_close_makes_the_codes_unknown() -> None:
    client = FakeClient()
    exits = ContainerExits(client, "x=y")
    settle(exits, client.stream, END)  # type: ignore[arg-type]
    assert exits.codes() is None
    assert exits.broken == "the engine ended its event stream"
