"""`load_run`: a trial as DataFrames that agree with the logs and with the checker."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl
from runlogs import records, replace_line

from analysis import load_run
from analysis.check.accounting import account
from analysis.load import load_trial
from vm_node.rundir import RunDir


def test_events_hold_one_row_per_log_line_with_its_file_and_line(run_dir: Path) -> None:
    run = load_run(run_dir)
    logs = RunDir(run_dir).log_files()
    assert run.events.height == sum(len(list(records(path))) for _, _, path in logs)
    vm1 = RunDir(run_dir).log_path(1)
    number, first_receive = next((n, r) for n, r in records(vm1) if r["event"] == "receive")
    row = run.events.filter((pl.col("file") == str(vm1)) & (pl.col("line") == number)).row(
        0, named=True
    )
    assert row["event"] == "receive" and row["lamport"] == first_receive["lamport"]
    assert row["vc"] == [first_receive["vc"][str(j)] for j in range(3)]
    assert row["tick"] == first_receive["tick"] and row["vm"] == 1


def test_ticks_are_null_on_lines_that_are_not_ticks(run_dir: Path) -> None:
    events = load_run(run_dir).events
    edges = events.filter(pl.col("event").is_in(["start", "ready", "stop"]))
    assert edges.height == 9 and edges["tick"].null_count() == 9


def test_messages_hold_one_row_per_msg_id_with_the_fates_the_books_count(
    make_run: Callable[..., Path],
) -> None:
    run_dir = make_run(loss_rate=0.1, duplicate_rate=0.1)
    messages = load_run(run_dir).messages
    books = account(load_trial(run_dir))
    assert messages.height == books.sent == messages["msg_id"].n_unique()
    counts = dict(messages.group_by("fate").len().iter_rows())
    assert counts.get("received") == books.received and counts.get("dropped") == books.dropped
    assert counts.get("queued") == books.queued and counts.get("failed") == books.failed
    received = messages.filter(pl.col("fate") == "received")
    assert received["received_by"].null_count() == 0
    assert (received["received_by"] == received["receiver"]).all()
    assert (received["received_at"] >= received["sent_at"]).all()
    assert messages.filter(pl.col("fate") != "received")["received_by"].null_count() == (
        messages.height - received.height
    )


def test_quarantined_lines_keep_their_file_line_and_reason(run_dir: Path) -> None:
    path = RunDir(run_dir).log_path(2)
    replace_line(path, 7, b"{broken")
    run = load_run(str(run_dir))
    (row,) = run.quarantined.iter_rows(named=True)
    assert row["file"] == str(path) and row["line"] == 7
    assert "malformed or truncated JSON" in row["reason"]
    assert 7 not in run.events.filter(pl.col("file") == str(path))["line"].to_list()
