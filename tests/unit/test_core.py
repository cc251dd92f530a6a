"""The VM's core: its lines and sends as a function of its inputs, and nothing else."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import msgspec
import orjson
from vmpeer import RUN, FakePeer

from vm_node.conditions import LinkCondition
from vm_node.config import NodeConfig
from vm_node.core import VmCore
from vm_node.vocabulary import LogLine, Message, VectorClock
from vm_node.wire import Codec

Sent = tuple[int, str, int, VectorClock, tuple[float, ...]]


class Recorder:
    """Collects what a core writes and sends."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []
        self.sent: list[Sent] = []

    def write(self, line: LogLine) -> None:
        self.lines.append(orjson.loads(msgspec.json.encode(line)))

    def send(
        self, to: int, msg_id: str, lamport: int, vc: VectorClock, delays: Sequence[float]
    ) -> None:
        self.sent.append((to, msg_id, lamport, vc, tuple(delays)))


def a_core(config: NodeConfig) -> tuple[VmCore, Recorder]:
    out = Recorder()
    return VmCore(config, 0, out.write, out.send), out


def replay(lines: list[dict[str, Any]], arrivals: list[Message]) -> list[dict[str, Any]]:
    """A fresh core fed what a VM's log says happened to it, and the messages it was sent."""
    start = lines[0]["config"]
    keys = ("vm", "vms", "rate", "event_range", "duration", "time_scale", "seed", "run")
    core, out = a_core(NodeConfig(**{key: start[key] for key in keys}))
    waiting = deque(arrivals)
    for line in lines:
        # A message reached the inbox before the first line that counts it.
        while len(core.inbox) < line["queue_len"] + (line["event"] == "receive"):
            core.arrive(waiting.popleft())
        at = line["timestamp"]
        match line["event"]:
            case "start":
                core.start(start["port"], at)
            case "ready":
                core.ready(line["start_at"], at, resumed=line.get("resumed", False))
            case "internal" | "send" | "receive":
                core.tick(line["tick"], at, line.get("behind_s", 0.0))
            case "bad_frame":
                core.bad_frame(line["reason"], line["peer"], line["from"], at)
            case "peer_up":
                core.peer_up(line["peer"], at)
            case "peer_down":  # its undelivered messages follow as send_failed lines
                core.peer_down(line["peer"], line["reason"], [], at)
            case "send_failed":
                core.send_failed(line["to"], line["msg_id"], line["reason"], at)
            case "stop":
                core.stop(line["reason"], line["unacked"], line["missing_byes"], at)
    return out.lines


def test_a_real_vms_log_is_what_a_fresh_core_makes_of_the_same_inputs(peer: FakePeer) -> None:
    codec = Codec(RUN, 1, 2)
    sent = [
        Message(RUN, 1, 0, f"1-0-{n}", lamport, {"0": 0, "1": lamport})
        for n, lamport in enumerate((5, 1000, 3, 1001), start=1)
    ]
    for msg in sent[:2]:
        peer.send_read(codec.message(0, msg.msg_id, msg.lamport, msg.vc))
    peer.send_read(b"not json at all\n")
    peer.send(b"".join(codec.message(0, m.msg_id, m.lamport, m.vc) for m in sent[2:]))
    peer.wait_for("receive", count=len(sent))
    peer.stop()
    lines = peer.lines()
    replayed = replay(lines, sent)
    assert [line["event"] for line in replayed] == [line["event"] for line in lines]
    assert {"start", "ready", "receive", "bad_frame", "stop"} <= {line["event"] for line in lines}
    del replayed[0]["config"], lines[0]["config"]  # the replay's has no addresses
    assert replayed == lines


def test_a_tick_takes_one_message_by_the_receive_rule() -> None:
    core, out = a_core(NodeConfig(vm=0, vms=2, run="r"))
    core.arrive(Message("r", 1, 0, "1-0-1", 9, {"0": 0, "1": 9}))
    core.arrive(Message("r", 1, 0, "1-0-2", 10, {"0": 0, "1": 10}))
    core.tick(0, 100.0, 0.0)
    (line,) = out.lines
    assert (line["event"], line["msg_id"], line["lamport"], line["jump"]) == (
        "receive",
        "1-0-1",
        10,
        10,
    )
    assert (line["vc"], line["queue_len"]) == ({"0": 1, "1": 9}, 1)
    assert core.clocks.vector == (1, 9) and out.sent == []


def test_a_send_tick_logs_before_it_sends_and_numbers_its_messages() -> None:
    core, out = a_core(NodeConfig(vm=1, vms=3, run="r", event_range=3, seed=4))
    k = 0
    while not out.sent:
        core.tick(k, 100.0 + k, 0.0)
        k += 1
    send = out.lines[-1]
    assert send["event"] == "send" and send["msg_ids"] == [m for _, m, *_ in out.sent]
    assert [to for to, *_ in out.sent] == send["to"]
    assert all(
        (lamport, vc, delays) == (send["lamport"], send["vc"], (0.0,))
        for *_, lamport, vc, delays in out.sent
    )
    assert send["msg_ids"][0] == "1-0-1"


def test_a_tick_a_whole_period_late_says_how_far_behind_it_is() -> None:
    core, out = a_core(NodeConfig(vm=0, vms=1, run="r", rate=10.0))
    core.tick(0, 100.0, 0.0999)
    core.tick(1, 100.2, 0.1234567)
    assert "behind_s" not in out.lines[0] and out.lines[1]["behind_s"] == 0.123457


def test_a_lost_message_has_a_fault_line_and_is_never_sent() -> None:
    lose_all = LinkCondition("loss", 0.0, None, None, probability=1.0)
    core, out = a_core(NodeConfig(vm=0, vms=2, run="r", event_range=1, links=(lose_all,)))
    core.ready(100.0, 99.0)
    core.tick(0, 100.0, 0.0)
    assert [line["event"] for line in out.lines] == ["ready", "send", "fault"]
    assert out.lines[-1]["kind"] == "loss" and out.lines[-1]["msg_id"] == "0-0-1"
    assert out.sent == []


def test_totals_count_what_happened_and_stop_reports_them() -> None:
    core, out = a_core(NodeConfig(vm=0, vms=2, run="r", rate=2.0))
    core.arrive(Message("r", 1, 0, "1-0-1", 1, {"1": 1}))
    for k in range(4):
        core.tick(k, 100.0 + k / 2, 0.0)
    core.bad_frame("bad JSON", "127.0.0.1:4000", None, 102.0)
    core.send_failed(1, "0-0-1", "not connected", 102.0)
    core.stop("completed", 0, [1], 103.0)
    stop = out.lines[-1]
    assert (stop["ticks"], stop["received"], stop["bad_frames"], stop["dropped"]) == (4, 1, 1, 1)
    assert stop["sent"] == sum(len(line.get("msg_ids", ())) for line in out.lines)
    assert stop["rate_achieved"] == 2.0 and stop["missing_byes"] == [1]
