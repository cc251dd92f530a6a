"""A fresh key per trial, with which the VMs sign and check every frame.

The key lives in one file outside the run directory (a private temporary
folder, removed when the trial ends; a folder whose command was killed before
it could remove it is removed by the next trial's). VMs read it from a file too: a Compose
or Swarm secret in containers, the file itself for local processes. So it is
never in compose.yaml, the manifest, the logs or any environment.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from pathlib import Path

KEY_FILE_ENV = "CLOCKLAB_AUTH_KEY_FILE"
SECRET = "clocklab_auth_key"  # the secret's name in the stack file
SECRET_TARGET = f"/run/secrets/{SECRET}"  # where containers find it
KEY_BYTES = 32
PREFIX = "clocklab-key-"  # then the pid of the command that made it


class TrialKey:
    """The key file of one trial: made by `create`, gone after `remove` (safe to call twice)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / "auth.key"

    @classmethod
    def create(cls, readable_by: int | None = None, top: Path | None = None) -> TrialKey:
        """A new random key, in a folder under `top` (the temporary directory). Its folder
        is private (0700); the file is 0600, or 0644 for `readable_by` (a container's uid)
        when clocklab cannot hand it over by chown."""
        remove_orphans(top)
        key = cls(Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=top)))
        fd = os.open(key.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secrets.token_hex(KEY_BYTES))
        if readable_by is not None:
            try:
                os.chown(key.path, readable_by, readable_by)
            except PermissionError:  # not root: readable by all, inside a folder only we enter
                os.chmod(key.path, 0o644)
        return key

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def remove_orphans(top: Path | None = None) -> list[Path]:
    """Remove the key folders of ours whose command is no longer running (SIGKILL,
    a crash); returns them.

    Other commands, and other trials of this one, create and remove their folders
    meanwhile: this command's folders are never candidates, and a folder that is gone
    by the time we look at it was simply removed by its owner.
    """
    removed = []
    mine = os.getpid()
    for folder in Path(top or tempfile.gettempdir()).glob(f"{PREFIX}*-*"):
        pid = folder.name[len(PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == mine or _running(int(pid)):
            continue
        try:
            owner = folder.stat().st_uid
        except FileNotFoundError:
            continue
        if owner == os.getuid():
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
