"""A VM log's file name, the one part of the run-directory contract a VM needs.

vm_node.rundir re-exports it with the rest of the contract; it lives apart so
that a VM does not load pathlib and the manifest types, which it never uses.
"""

from __future__ import annotations

import re

LOG_NAME = re.compile(r"vm(\d+)(?:\.(\d+))?\.jsonl")


def log_name(vm: int, incarnation: int) -> str:
    """`vm<i>.jsonl` for the first run of VM i, `vm<i>.<k>.jsonl` after k restarts."""
    return f"vm{vm}.jsonl" if incarnation == 0 else f"vm{vm}.{incarnation}.jsonl"


def parse_log_name(name: str) -> tuple[int, int] | None:
    """(vm, incarnation) of a VM log's file name, None for any other file."""
    match = LOG_NAME.fullmatch(name)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2) or 0)
