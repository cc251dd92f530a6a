"""The ShiViz export parses with ShiViz's default expression and keeps its clock rules."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import orjson

from analysis.columns import TICK_CODES
from analysis.load.runs import load_trial
from analysis.report.shiviz import REGEX, write_shiviz

# ShiViz's default expression, in Python's spelling of named groups.
EVENT = re.compile(REGEX.replace("(?<", "(?P<"))


def test_the_file_starts_with_the_expression_and_an_empty_delimiter_line(
    run_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run.log"
    write_shiviz(load_trial(run_dir), out)
    first, second, *_ = out.read_text().split("\n")
    assert (first, second) == (r"(?<event>.*)\n(?<host>\S*) (?<clock>{.*})", "")


def test_every_tick_is_an_event_whose_host_counts_itself_up_by_one(
    run_dir: Path, tmp_path: Path
) -> None:
    trial = load_trial(run_dir)
    out = tmp_path / "run.log"
    events = write_shiviz(trial, out)
    body = out.read_text().split("\n", 2)[2]
    matches = list(EVENT.finditer(body))
    assert len(matches) == events == int(sum((trial.lines.event == c).sum() for c in TICK_CODES))
    own: defaultdict[str, list[int]] = defaultdict(list)
    for m in matches:
        clock = orjson.loads(m["clock"])
        own[m["host"]].append(clock[m["host"]])
        assert all(n > 0 for n in clock.values())
    assert sorted(own) == ["vm0", "vm1", "vm2"]
    for counts in own.values():
        assert counts == list(range(1, len(counts) + 1))


def test_events_say_what_happened(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run.log"
    write_shiviz(load_trial(run_dir), out)
    text = out.read_text()
    assert re.search(r"^send \d+-0-\d+ to vm\d · tick \d+, lamport \d+$", text, re.M)
    assert re.search(
        r"^receive \d+-0-\d+ from vm\d \(jump \d+\) · tick \d+, lamport \d+$", text, re.M
    )
