"""The cluster's errors: one base under the orchestrator's, one kind naming what is missing."""

from __future__ import annotations

from orchestrator.errors import ClocklabError


class ClusterError(ClocklabError):
    """`clocklab cluster` could not do what it was asked; the message says what to do."""


class NestedEngineError(ClusterError):
    """A host's own Docker engine cannot run here: names the capability or mount it lacks."""

    def __init__(self, host: str, missing: str, evidence: str) -> None:
        super().__init__(
            f"{host} cannot run its own Docker engine: {missing}.\n  the engine said: {evidence}"
        )
        self.host = host
        self.missing = missing
