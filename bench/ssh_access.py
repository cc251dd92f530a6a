"""An ssh client of its own for joining simulated hosts, leaving the user's ~/.ssh untouched.

`ssh` reads the config in the passwd entry's home, not $HOME, so a key pair,
known_hosts and config in a scratch folder reach it through an `ssh` on PATH
that runs the real one with `-F` that config. docker-py (use_ssh_client) and the
docker CLI both run `ssh` from PATH, so every engine reached over ssh:// in a
child whose environment is `env()` uses them. Host keys are accepted on first
use (the hosts are new) and then checked.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path


class SshAccess:
    """A key pair and an ssh config in `folder`, for children run with `env()`."""

    def __init__(self, folder: Path) -> None:
        real = shutil.which("ssh")
        if real is None:
            raise RuntimeError("no ssh client here: install openssh-client")
        folder.mkdir(parents=True, exist_ok=True)
        self.key = folder / "id_ed25519"
        if not self.key.exists():
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key)], check=True
            )
        config = folder / "ssh_config"
        config.write_text(
            "Host *\n"
            f"  IdentityFile {self.key}\n"
            "  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {folder / 'known_hosts'}\n"
            "  StrictHostKeyChecking accept-new\n"
            "  BatchMode yes\n"
            "  ConnectTimeout 10\n"
            "  LogLevel ERROR\n"
        )
        self.bin = folder / "bin"
        self.bin.mkdir(exist_ok=True)
        wrapper = self.bin / "ssh"
        wrapper.write_text(f'#!/bin/sh\nexec {real} -F {config} "$@"\n')
        wrapper.chmod(0o755)

    @property
    def public_key(self) -> Path:
        return self.key.with_suffix(".pub")

    def env(self, environ: Mapping[str, str]) -> dict[str, str]:
        """`environ` with this folder's `ssh` first on PATH."""
        return {**environ, "PATH": f"{self.bin}:{environ.get('PATH', '')}"}
