"""Lamport and vector clocks as pure values: the rules, and nothing else."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from vm_node.vocabulary import VectorClock


class Clocks(msgspec.Struct, frozen=True, gc=False):
    """A VM's logical clocks: a Lamport counter and a vector of per-VM counters."""

    me: int
    lamport: int
    vector: tuple[int, ...]

    @classmethod
    def zero(cls, me: int, vms: int) -> Clocks:
        return cls(me, 0, (0,) * vms)

    def local_event(self) -> Clocks:
        """An internal event or a send (to one peer or to many): one step."""
        vector = list(self.vector)
        vector[self.me] += 1
        return Clocks(self.me, self.lamport + 1, tuple(vector))

    def receive(self, msg_lamport: int, msg_vector: Mapping[str, int]) -> Clocks:
        """The receive rule: max of both clocks, then one step."""
        vector = list(self.vector)
        for key, value in msg_vector.items():
            j = int(key)
            if value > vector[j]:
                vector[j] = value
        vector[self.me] += 1
        return Clocks(self.me, max(self.lamport, msg_lamport) + 1, tuple(vector))

    def vc(self) -> VectorClock:
        """The vector clock as logs and frames carry it."""
        vector = self.vector
        keys = _KEYS.get(len(vector))
        if keys is None:
            keys = _KEYS[len(vector)] = tuple(str(j) for j in range(len(vector)))
        return dict(zip(keys, vector, strict=False))  # the keys are made for this length


# The vector's keys by its length, made once: every log line and message carries them.
_KEYS: dict[int, tuple[str, ...]] = {}
