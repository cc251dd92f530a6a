"""The VM as a process: its log stream and incarnation, its file limit, then its Node.

vm_node's modules on a VM's path use os.path rather than pathlib, so that a VM
does not load pathlib and its imports for a few file names.
"""

from __future__ import annotations

import os
import resource

import msgspec

from vm_node.config import NodeConfig
from vm_node.eventlog import EventLog, LineSink
from vm_node.node import Node
from vm_node.priority import claim_realtime
from vm_node.resume import Resume, next_incarnation, read_resume


def _raise_fd_limit() -> None:
    """Many idle or hostile connections must not starve the peers' links of sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def serve(config: NodeConfig) -> int:
    _raise_fd_limit()
    if config.realtime:  # the start line then says whether it was granted
        config = msgspec.structs.replace(config, realtime=claim_realtime())
    log_dir = config.log_dir
    os.makedirs(log_dir, exist_ok=True)
    resume: Resume | None
    if config.resume is not None:  # the orchestrator kept the earlier incarnations' logs
        incarnation, resume = config.resume.incarnation, config.resume.resume
    else:
        incarnation = next_incarnation(log_dir, config.vm)
        resume = read_resume(log_dir, config.vm, incarnation, config.vms)
    sink = LineSink.open(config.log_stream, log_dir, config.vm, incarnation)
    log = EventLog(sink)
    try:
        return await Node(config, incarnation, log, resume).run()
    finally:
        log.close()
