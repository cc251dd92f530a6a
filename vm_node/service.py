"""The VM as a process: its log stream and incarnation, its file limit, then its Node."""

from __future__ import annotations

import resource
from pathlib import Path

from vm_node.config import NodeConfig
from vm_node.eventlog import EventLog, LineSink, next_incarnation, read_resume
from vm_node.node import Node


def _raise_fd_limit() -> None:
    """Many idle or hostile connections must not starve the peers' links of sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def serve(config: NodeConfig) -> int:
    _raise_fd_limit()
    log_dir = Path(config.log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    incarnation = next_incarnation(log_dir, config.vm)
    resume = read_resume(log_dir, config.vm, incarnation, config.vms)
    sink = LineSink.open(config.log_stream, log_dir, config.vm, incarnation)
    log = EventLog(sink, run=config.run, vm=config.vm, incarnation=incarnation)
    try:
        return await Node(config, incarnation, log, resume).run()
    finally:
        log.close()
