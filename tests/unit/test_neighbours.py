"""A fleet that needs more neighbour entries than the kernel keeps is named, with the fix."""

from __future__ import annotations

from pathlib import Path

from orchestrator import neighbours


def thresh(tmp_path: Path, limit: str) -> Path:
    (tmp_path / "gc_thresh3").write_text(limit)
    return tmp_path


def test_fifty_vms_do_not_fit_the_default_table_and_the_fix_is_named(tmp_path: Path) -> None:
    problem = neighbours.shortfall(50, thresh(tmp_path, "1024\n"))
    assert problem is not None
    assert "need 2450 neighbour (ARP) entries" in problem
    assert "at most 1024" in problem
    assert "gc_thresh3=8192" in problem


def test_a_fleet_that_fits_or_an_unreadable_table_says_nothing(tmp_path: Path) -> None:
    assert neighbours.shortfall(32, thresh(tmp_path, "1024")) is None  # 992 entries
    assert neighbours.shortfall(50, tmp_path / "missing") is None
