"""vm_node's exceptions: one base, so a caller can catch everything the VM raises on purpose."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


class VmNodeError(Exception):
    """Base of every error vm_node raises on purpose."""


class SettingError(VmNodeError, ValueError):
    """A VM setting (flag or CLOCKLAB_ variable) has an invalid value."""

    def __init__(self, setting: str, value: object, problem: str) -> None:
        super().__init__(f"invalid {setting}={value!r}: {problem}")
        self.setting = setting
        self.value = value


class ConditionError(VmNodeError, ValueError):
    """A link condition (delay, loss, duplicate) that is not valid; names the field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class BadFrame(VmNodeError, ValueError):
    """A line on the wire that is not a valid frame; the message is the reason."""


class NotYetNamed(VmNodeError, OSError):
    """A peer's name does not resolve: its container has not started."""


NAMED_VMS = 10  # VMs a message names; a large fleet's full list would be a page


def name_vms(ids: Sequence[int]) -> str:
    """`vm3, vm7` for a few ids; the first NAMED_VMS and how many more for many."""
    named = ", ".join(f"vm{i}" for i in ids[:NAMED_VMS])
    return f"{named} and {len(ids) - NAMED_VMS} more" if len(ids) > NAMED_VMS else named


class BarrierTimeout(VmNodeError):
    """Some peers never became ready: the trial cannot start."""

    def __init__(self, missing: list[int], peers: int, unlinked: int) -> None:
        super().__init__(
            f"{len(missing)} of {peers} peers never ready, {unlinked} of them never linked: "
            f"{name_vms(missing)}"
        )
        self.missing = missing


class ManifestError(VmNodeError, ValueError):
    """A manifest.json that cannot be read, or a field of it with the wrong type."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
