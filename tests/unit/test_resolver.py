"""Where a VM finds its peers: explicit addresses, names, hints, or 127.0.0.1."""

from __future__ import annotations

import asyncio

import pytest

from vm_node import resolver
from vm_node.config import PeerAddress
from vm_node.errors import NotYetNamed
from vm_node.resolver import Resolver


def names(monkeypatch: pytest.MonkeyPatch, table: dict[str, str]) -> list[str]:
    """The name service answers from `table`; returns the names asked, in order."""
    asked: list[str] = []

    async def lookup(name: str, port: int) -> str | None:
        asked.append(name)
        return table.get(name)

    monkeypatch.setattr(resolver, "_lookup", lookup)
    return asked


def test_a_named_peer_is_reached_at_the_address_its_name_resolves_to(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked = names(monkeypatch, {"vm0": "10.0.0.2", "vm1": "10.0.0.3"})
    resolve = Resolver(0, 5000, {})
    assert asyncio.run(resolve(1)) == PeerAddress("10.0.0.3", 5000)
    assert asyncio.run(resolve(1)) == PeerAddress("10.0.0.3", 5000)
    assert asked == ["vm0", "vm1", "vm1"]  # our own name once, the peer's on every attempt


def test_a_hint_is_used_without_asking_the_name_service(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = names(monkeypatch, {"vm0": "10.0.0.2"})
    resolve = Resolver(0, 5000, {})
    assert asyncio.run(resolve(1, "10.0.0.9")) == PeerAddress("10.0.0.9", 5000)
    assert asked == ["vm0"]


def test_a_peer_whose_name_does_not_resolve_yet_is_not_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    names(monkeypatch, {"vm0": "10.0.0.2"})
    with pytest.raises(NotYetNamed, match="vm1 does not resolve yet"):
        asyncio.run(Resolver(0, 5000, {})(1))


def test_without_names_peers_are_on_127_0_0_1_at_base_port_plus_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    names(monkeypatch, {})
    assert asyncio.run(Resolver(0, 6000, {})(2)) == PeerAddress("127.0.0.1", 6002)


def test_an_explicit_address_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = names(monkeypatch, {"vm0": "10.0.0.2", "vm1": "10.0.0.3"})
    explicit = {1: PeerAddress("192.0.2.1", 7000)}
    assert asyncio.run(Resolver(0, 5000, explicit)(1)) == PeerAddress("192.0.2.1", 7000)
    assert asked == []
