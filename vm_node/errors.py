"""vm_node's exceptions: one base, so a caller can catch everything the VM raises on purpose."""

from __future__ import annotations

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


class BarrierTimeout(VmNodeError):
    """Some peers never became ready: the trial cannot start."""

    def __init__(self, missing: list[int]) -> None:
        super().__init__(f"peers never ready: {missing}")
        self.missing = missing


class ManifestError(VmNodeError, ValueError):
    """A manifest.json that cannot be read, or a field of it with the wrong type."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
