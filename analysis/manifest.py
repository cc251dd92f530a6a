"""A run directory's `manifest.json`: what the orchestrator says the trial was."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from analysis.errors import RunDirError

_TRIAL_DIR = re.compile(r"trial-(\d+)$")


@dataclass(frozen=True, slots=True)
class FaultWindow:
    """A fault the orchestrator injected, in wall-clock Unix seconds."""

    kind: str
    start: float
    end: float
    targets: tuple[int, ...]

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> FaultWindow:
        targets = raw.get("targets") or ()
        return cls(
            kind=str(raw.get("kind", "fault")),
            start=float(raw["start"]),
            end=float(raw["end"]),
            targets=tuple(int(t) for t in targets),
        )


@dataclass(frozen=True, slots=True)
class Manifest:
    """The fields analysis uses; a run without a manifest gets one from its path."""

    experiment: str
    trial: int
    run: str | None
    rates: tuple[float, ...]
    time_scale: float
    duration: float | None
    outcome: str | None
    started_at: float | None
    ended_at: float | None
    faults: tuple[FaultWindow, ...]

    @classmethod
    def from_path(cls, run_dir: Path) -> Manifest:
        """Read `run_dir/manifest.json`, or infer experiment and trial from the path."""
        path = run_dir / "manifest.json"
        if not path.exists():
            return cls.from_dict({}, run_dir)
        try:
            raw = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as e:
            raise RunDirError(path, f"cannot read the manifest ({e})") from e
        if not isinstance(raw, dict):
            raise RunDirError(path, "the manifest is not a JSON object")
        try:
            return cls.from_dict(raw, run_dir)
        except (KeyError, TypeError, ValueError) as e:
            raise RunDirError(path, f"bad manifest field ({e!r})") from e

    @classmethod
    def from_dict(cls, raw: dict[str, Any], run_dir: Path) -> Manifest:
        match = _TRIAL_DIR.search(run_dir.resolve().name)
        experiment = raw.get("experiment") or (
            run_dir.resolve().parent.name if match else run_dir.resolve().name
        )
        trial = raw.get("trial", int(match.group(1)) if match else 1)
        return cls(
            experiment=str(experiment),
            trial=int(trial),
            run=raw.get("run"),
            rates=tuple(float(r) for r in raw.get("rates") or ()),
            time_scale=float(raw.get("time_scale") or 1.0),
            duration=_optional_float(raw.get("duration")),
            outcome=raw.get("outcome"),
            started_at=_optional_float(raw.get("started_at")),
            ended_at=_optional_float(raw.get("ended_at")),
            faults=tuple(FaultWindow.from_dict(f) for f in raw.get("faults") or ()),
        )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)
