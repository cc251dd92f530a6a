"""A trial's run directory: `<out>/<experiment>/trial-<n>/` with logs/ and manifest.json."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_OUT = Path("runs")


@dataclass(frozen=True, slots=True)
class RunDir:
    path: Path

    @classmethod
    def fresh(cls, out: Path, experiment: str, trial: int) -> RunDir:
        """The trial's directory, emptied: running a trial again replaces it."""
        path = out / experiment / f"trial-{trial}"
        if path.exists():
            shutil.rmtree(path)
        run_dir = cls(path)
        run_dir.logs.mkdir(parents=True)
        # Containers run as another user and write their logs here.
        os.chmod(run_dir.logs, 0o777)
        return run_dir

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    @property
    def manifest(self) -> Path:
        return self.path / "manifest.json"

    @property
    def compose_file(self) -> Path:
        return self.path / "compose.yaml"

    @property
    def orchestrator_log(self) -> Path:
        """The faults the orchestrator carried out, as JSON lines (not *.jsonl: not a VM's)."""
        return self.path / "orchestrator.log"

    @property
    def output(self) -> Path:
        """What VMs printed besides their logs (stderr), one file per VM."""
        return self.path / "output"

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Replace manifest.json atomically: a reader never sees half a file."""
        tmp = self.manifest.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
        tmp.replace(self.manifest)
