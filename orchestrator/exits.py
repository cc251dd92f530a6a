"""Which of a trial's containers have exited, and how, as the engine's events tell it.

Listing a trial's containers to learn their state costs the engine one request
per container (the SDK inspects each one it lists), so looking at a large trial
several times a second keeps busy the engine that is starting its containers,
and the orchestrator too. The engine's event stream says the same once, as it
happens: `start` and `die` (with the exit code) of
every container carrying the trial's label.
"""

from __future__ import annotations

import threading
from typing import Any

from orchestrator.engine import LABEL_VM


class ContainerExits:
    """Follows the `start` and `die` events of the containers labelled `label` (k=v).

    Open it before the containers start, so that no event is missed.
    """

    def __init__(self, client: Any, label: str) -> None:
        filters = {"type": "container", "event": ["start", "die"], "label": label}
        self._stream = client.events(decode=True, filters=filters)
        self._codes: dict[int, int | None] = {}
        self._ids: dict[int, str] = {}  # container id by VM
        self._lock = threading.Lock()
        self.broken: str | None = None
        self._closing = False
        self.changed = threading.Event()  # set on every start or die
        self._thread = threading.Thread(target=self._follow, name="container-exits", daemon=True)
        self._thread.start()

    def codes(self) -> dict[int, int | None] | None:
        """Exit code by VM (None: running), for every container seen to start; None once
        the stream has ended early (`broken` says why): ask the engine another way."""
        with self._lock:
            return None if self.broken is not None else dict(self._codes)

    def container_id(self, vm: int) -> str:
        with self._lock:
            return self._ids[vm]

    def close(self) -> None:
        self._closing = True
        self._stream.close()
        self._thread.join(timeout=5)

    def _follow(self) -> None:
        try:
            for event in self._stream:
                attributes = (event.get("Actor") or {}).get("Attributes") or {}
                vm = attributes.get(LABEL_VM)
                if vm is None:
                    continue
                exited = event.get("Action") == "die"
                code = int(attributes.get("exitCode", -1)) if exited else None
                with self._lock:
                    self._codes[int(vm)] = code
                    self._ids[int(vm)] = str((event.get("Actor") or {}).get("ID", ""))
                self.changed.set()
            reason = "the engine ended its event stream"
        except Exception as e:  # the stream's connection failed (or was closed by close())
            reason = f"the engine's event stream failed: {type(e).__name__}: {e}"
        if not self._closing:
            with self._lock:
                self.broken = reason
            self.changed.set()
