"""A trial in virtual time: the VMs' own cores on one deterministic clock.

Tests, the benchmark and `--backend sim` use it. Each VM is a VmCore
(vm_node.core) with the configuration a real VM of the trial would get, writing
through the VM's own EventLog, so its log holds the bytes a real VM would write
for the same events; every draw comes from the seed.

- spec.py: a simulated trial in one value (SyntheticRun), written as a run directory
- simulation.py: the VMs run to the end on the agenda: ticks, messages, faults
- agenda.py: the virtual clock and the events to come
- network.py: the wire and the links, with their silences, refusals and reconnects
- faults.py: kill, pause and cut
- logs.py: a simulation's logs in a run directory
"""

from vm_node.sim.faults import Cut, Fault, Kill, Pause
from vm_node.sim.logs import simulate
from vm_node.sim.network import PLAIN, Tamper, Wire
from vm_node.sim.simulation import OpenLog, Simulation
from vm_node.sim.spec import SyntheticRun, write_run

__all__ = [
    "PLAIN",
    "Cut",
    "Fault",
    "Kill",
    "OpenLog",
    "Pause",
    "Simulation",
    "SyntheticRun",
    "Tamper",
    "Wire",
    "simulate",
    "write_run",
]
