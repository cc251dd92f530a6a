"""The HTML report: self-contained, with verdicts, claims, tables and a figure for each view."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from runlogs import doctor, find, is_event, replace_line

from analysis.report.page import write_report
from vm_node.rundir import RunDir
from vm_node.sim import SyntheticRun, write_run

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Two experiments; original trial 2 is doctored, variation trial 2 lost its last line,
    variation trial 1 has vm1's clock 0.3 s ahead."""
    root = tmp_path_factory.mktemp("runs")
    for trial, rates in enumerate([(1.0, 3.0, 6.0), (2.0, 5.0, 1.0), (4.0, 1.0, 6.0)], 1):
        write_run(
            SyntheticRun(
                rates=rates, duration=30.0, trial=trial, seed=trial, experiment="original"
            ),
            root,
        )
    for trial, rates in enumerate([(4.0, 5.0, 5.0), (5.0, 4.0, 4.0)], 1):
        spec = SyntheticRun(
            rates=rates,
            duration=30.0,
            trial=trial,
            event_range=5,
            experiment="variation",
            clock_offsets=(0.0, 0.3, 0.0) if trial == 1 else (),
        )
        write_run(spec, root)
    doctored = RunDir(root / "original" / "trial-2").log_path(1)
    line, _ = find(doctored, is_event("receive"))
    doctor(doctored, line, lambda r: r.update(jump=r["jump"] + 1))
    cut = RunDir(root / "variation" / "trial-2").log_path(0)
    replace_line(cut, len(cut.read_bytes().splitlines()), b'{"event":"st')
    output = root / "out" / "report.html"
    write_report([root], output)
    return output.read_text(encoding="utf-8")


def test_the_report_needs_nothing_but_itself(report: str) -> None:
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|file:)""", report)
    assert "<script" not in report and "<link" not in report


def test_every_image_is_an_embedded_png(report: str) -> None:
    sources = re.findall(r'<img src="([^"]+)"', report)
    # the comparison, the model and the clocks, then seven per experiment
    assert len(sources) == 3 + 2 * 7
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1]).startswith(PNG)


def test_verdicts_name_the_doctored_line_and_the_incomplete_log(report: str) -> None:
    assert report.count(">valid</span>") == 3  # the skewed trial among them
    assert ">invalid</span>" in report and ">unknown</span>" in report
    assert re.search(r"\[jump\] \S+/original/trial-2/logs/vm1\.jsonl:\d+: jump", report)
    assert "variation/trial-2/logs/vm0.jsonl: no stop line" in report


def test_the_claims_and_the_comparison_cover_both_experiments(report: str) -> None:
    assert "Slower VMs make larger logical clock jumps" in report
    assert "variation vs original" in report
    assert re.search(r"<th>original</th><th>variation</th>", report)
    assert "rate vs mean jump" in report


def test_each_experiment_has_its_tables(report: str) -> None:
    for heading in ("Verdicts", "Per VM", "Drift between pairs of VMs", "Messages", "Figures"):
        assert report.count(f"<h3>{heading}</h3>") == 2
    assert "every msg_id accounted for" in report


def test_each_trial_shows_its_clock_offsets(report: str) -> None:
    assert report.count("<h3>Clock offsets</h3>") == 2
    skewed = re.search(
        r"<td class=\"text\">variation/trial-1</td><td class=\"text\">vm1</td>"
        r"<td class=\"text\">synthetic</td><td>([^<]+)</td><td>([^<]+)</td>",
        report,
    )
    assert skewed is not None
    assert skewed.group(1) == "300.000"
    low, high = (float(x) for x in skewed.group(2).split(" … "))
    assert low <= 300.0 <= high


def test_a_trial_with_no_readable_line_still_gets_a_report(tmp_path: Path) -> None:
    run_dir = write_run(SyntheticRun(rates=(1.0, 2.0), duration=5.0), tmp_path)
    for log in (run_dir / "logs").iterdir():
        log.write_text("garbage\n")
    output = tmp_path / "report.html"
    write_report([run_dir], output)
    page = output.read_text()
    assert ">unknown</span>" in page and "no readable log line" in page
