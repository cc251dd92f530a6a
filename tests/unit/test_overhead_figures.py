"""The overhead benchmark's start figure for the scale test: the median of its repeats."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import fleet, overhead
from bench.context import Context
from bench.report import Figure, Section, Target

CTX = Context(quick=False, work=Path("."), docker=None)


def figure_from(monkeypatch: pytest.MonkeyPatch, *pairs: fleet.StartPair) -> tuple[Figure, Section]:
    monkeypatch.setattr(fleet, "start_pairs", lambda ctx, n: pairs)
    section = Section("overhead", "test", columns=())
    single = Figure(  # as the overhead benchmark makes it for the scale test
        "docker, 50 VMs: command start → first tick",
        99.0,
        "s",
        reference=1.0,
        target=Target("at_most", overhead.START_RATIO, "×"),
        target_on="ratio",
    )
    return overhead._median_start(CTX, section, 50, single), section


def test_the_pair_with_the_median_ratio_is_reported_against_the_target(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    figure, section = figure_from(
        monkeypatch,
        fleet.StartPair(vms_s=16.0, bare_s=10.0),  # 1.6x
        fleet.StartPair(vms_s=14.0, bare_s=10.0),  # 1.4x
        fleet.StartPair(vms_s=13.0, bare_s=10.0),  # 1.3x
    )
    assert (figure.value, figure.reference) == (14.0, 10.0)
    assert figure.met is True
    assert figure.name.endswith("median of 3")
    assert "1.30x" in section.notes[0] and "1.60x" in section.notes[0]


def test_a_median_above_the_target_is_not_met(monkeypatch: pytest.MonkeyPatch) -> None:
    figure, _ = figure_from(
        monkeypatch,
        fleet.StartPair(vms_s=16.0, bare_s=10.0),
        fleet.StartPair(vms_s=18.0, bare_s=10.0),
        fleet.StartPair(vms_s=19.0, bare_s=10.0),
    )
    assert figure.ratio == pytest.approx(1.8)
    assert figure.met is False


def test_with_no_pair_that_ticked_the_single_figure_stays_and_is_judged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    figure, section = figure_from(monkeypatch)
    assert (figure.value, figure.reference) == (99.0, 1.0)
    assert figure.met is False
    assert not section.notes
