"""This test session's id: everything the Docker tests create carries it as
`clocklab.session`, so that cleanups and leak checks touch only their own objects
(a trial or benchmark someone else runs on the same engine is left alone)."""

from __future__ import annotations

import os
import uuid
from typing import Any

from orchestrator.engine import LABEL_SESSION, SESSION_ENV

SESSION = os.environ.setdefault(SESSION_ENV, f"test-{uuid.uuid4().hex[:10]}")
OURS = f"{LABEL_SESSION}={SESSION}"


def labelled(client: Any) -> list[str]:
    """Names of this session's containers and networks."""
    containers = client.containers.list(all=True, filters={"label": OURS})
    networks = client.networks.list(filters={"label": OURS})
    return [c.name for c in containers] + [n.name for n in networks]
