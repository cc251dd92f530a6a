"""The analysis package's errors: one base, subclasses that carry what failed."""

from __future__ import annotations

from pathlib import Path


class AnalysisError(Exception):
    """Base of every error analysis raises on purpose."""


class RunDirError(AnalysisError):
    """A path that should hold a run could not be used."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class NoRunsError(AnalysisError):
    """None of the given paths holds a run's logs."""

    def __init__(self, paths: list[Path]) -> None:
        names = ", ".join(str(p) for p in paths)
        super().__init__(
            f"no run found under {names}: expected directories with logs/vm<i>.jsonl "
            "(run `clocklab up` first, or pass a runs root, an experiment or a trial directory)"
        )
        self.paths = paths


class MalformedLine(AnalysisError):
    """A log line that breaks the schema; `reason` names the key and the value.

    Loading catches it and quarantines the line with its file and line number.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
