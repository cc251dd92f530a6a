"""The clocks' claims over many trials, on simulated trials and on doctored ones."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from runlogs import doctor, find, is_event, records

from analysis.clocks import Trace
from analysis.clocks.claims import Epsilon, TrialClocks, epsilon, judge_clocks
from analysis.load.runs import load_trial
from analysis.metrics.claims import Claim, Support
from analysis.offsets import trial_offsets
from vm_node.rundir import NodeOffset, RunDir
from vm_node.sim import SyntheticRun, write_run

RATES = [(1.0, 3.0, 6.0), (2.0, 5.0, 1.0), (4.0, 1.0, 6.0), (3.0, 6.0, 2.0), (5.0, 2.0, 4.0)]
SKEW = (0.0, 0.3, -0.1)  # ε = 0.4 s
SHAPE = {"duration": 60.0, "time_scale": 20.0, "experiment": "skewed"}


def clocks_of(run_dir: Path) -> TrialClocks:
    trial = load_trial(run_dir)
    return TrialClocks.of(trial, Trace.from_trial(trial))


def claim(claims: list[Claim], starts: str) -> Claim:
    (found,) = [c for c in claims if c.statement.startswith(starts)]
    return found


def skewed_runs(root: Path, offsets: tuple[float, ...] = SKEW) -> list[Path]:
    return [
        write_run(SyntheticRun(rates=rates, seed=t, trial=t, clock_offsets=offsets, **SHAPE), root)
        for t, rates in enumerate(RATES, 1)
    ]


@pytest.fixture(scope="module")
def skewed(tmp_path_factory: pytest.TempPathFactory) -> list[TrialClocks]:
    return [clocks_of(run) for run in skewed_runs(tmp_path_factory.mktemp("runs"))]


def move_timestamps(run_dir: Path, vm: int, seconds: float) -> None:
    """A VM whose clock is off by more than its configuration says."""
    path = RunDir(run_dir).log_path(vm)
    moved = [r | {"timestamp": r["timestamp"] + seconds} for _, r in records(path)]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in moved))


def test_epsilon_is_the_spread_of_the_offsets_the_vms_were_configured_with(
    skewed: list[TrialClocks],
) -> None:
    assert all(t.epsilon == Epsilon(0.4, "configured skew") for t in skewed)
    assert skewed[0].epsilon is not None and skewed[0].epsilon.units == 400_001
    assert skewed[0].counter_bound == 3 * 400_002


def test_a_trial_without_a_vms_configuration_has_no_epsilon(run_dir: Path) -> None:
    path = RunDir(run_dir).log_path(1)
    line, _ = find(path, is_event("start"))
    doctor(path, line, lambda r: r.pop("config"))  # the line is quarantined
    assert epsilon(load_trial(run_dir)) is None


def place(run_dir: Path, **changes: object) -> Path:
    """Say in the manifest where the VMs ran, as a multi-node backend records it."""
    rd = RunDir(run_dir)
    rd.write_manifest(rd.read_manifest().with_(**changes))
    return run_dir


def test_across_nodes_epsilon_is_the_measured_spread_widened_by_both_reads(
    make_run: Callable[..., Path],
) -> None:
    reads = (
        NodeOffset("a", "start", 0.0, 0.001, (0, 1)),
        NodeOffset("b", "start", -0.002, 0.002, (2,)),
        NodeOffset("a", "end", 9.0, 0.001, (0, 1)),  # b was not read at the end: not used
    )
    run = place(make_run(clock_offsets=SKEW), node_offsets=reads)
    # VMs at 0 + 0, 0 + 0.3 and -0.002 - 0.1: vm1 is 0.402 s ahead of vm2, ± 0.001 + 0.002
    eps = epsilon(load_trial(run))
    assert eps is not None and eps.source == "measured node offsets"
    assert eps.seconds == pytest.approx(0.405)
    within = claim(judge_clocks([clocks_of(run)]), "HLC stays")
    assert within.support is Support.SUPPORTED
    assert "ε from measured node offsets on 1" in within.evidence


def test_across_nodes_without_reads_epsilon_is_the_widest_bound_the_messages_allow(
    make_run: Callable[..., Path],
) -> None:
    placed = {"placement": {"0": "a", "1": "a", "2": "b"}}
    run = place(make_run(rates=(3.0, 4.0, 5.0), clock_offsets=SKEW), environment=placed)
    trial = load_trial(run)
    eps = epsilon(trial)
    assert eps is not None and eps.source == "the messages' offset bounds"
    assert eps.seconds == trial_offsets(trial).vms.closed().high.max()
    assert 0.4 <= eps.seconds < 0.5  # the true spread, and the least apparent delay on top
    assert clocks_of(run).beyond_epsilon == 0


def test_across_nodes_a_vm_that_never_sends_leaves_no_epsilon(
    make_run: Callable[..., Path],
) -> None:
    # vm0 at one tick a second spends every tick receiving: nothing bounds its clock from below
    run = place(make_run(rates=(1.0, 2.0, 3.0)), environment={"placement": {"0": "a", "1": "b"}})
    assert epsilon(load_trial(run)) is None


def test_every_clock_claim_holds_on_skewed_simulated_trials(skewed: list[TrialClocks]) -> None:
    claims = judge_clocks(skewed)
    assert [c.support for c in claims] == [Support.SUPPORTED] * 3
    assert {c.scope for c in claims} == {"skewed"}
    assert all(t.beyond_epsilon == 0 and t.still_clock == 0 for t in skewed)
    largest = max(max(t.hlc_lead) for t in skewed)
    assert 0.3 < largest <= 0.4  # messages from the VM 0.3 s ahead reach the one 0.1 s behind
    assert "events within ε (100.00%)" in claim(claims, "HLC stays").evidence


def test_the_counter_claim_names_the_largest_counter_beside_its_bound(
    skewed: list[TrialClocks],
) -> None:
    evidence = claim(judge_clocks(skewed), "HLC's counter").evidence
    largest = max(max(t.hlc_c) for t in skewed)
    assert largest > 0
    assert f"largest c {largest:g} over 5 trials" in evidence
    assert "N·(ε + 1) = 3·(400001 + 1) = 1200006" in evidence


def test_a_vm_further_off_than_configured_contradicts_both_hlc_claims(
    make_run: Callable[..., Path],
) -> None:
    run = make_run(clock_offsets=(0.0, 0.0, 0.0))
    move_timestamps(run, 2, 0.5)  # ε stays 0 + 1 µs: the configuration says nothing of it
    trial = clocks_of(run)
    assert trial.beyond_epsilon > 0
    claims = judge_clocks([trial])
    within, counter = claim(claims, "HLC stays"), claim(claims, "HLC's counter")
    assert within.support is Support.CONTRADICTED
    assert f"{trial.events - trial.beyond_epsilon} of {trial.events} events" in within.evidence
    assert max(trial.hlc_c) > 3 * 2  # N·(ε + 1) with ε = 1 µs
    assert counter.support is Support.CONTRADICTED and "1 trial(s) over it" in counter.evidence


def test_a_physical_clock_that_stands_still_leaves_the_counter_bound_untested(
    make_run: Callable[..., Path],
) -> None:
    run = make_run()
    path = RunDir(run).log_path(0)
    _, first = find(path, is_event("internal"))
    second, _ = find(path, is_event("internal"), 1)
    doctor(path, second, lambda r: r.update(timestamp=first["timestamp"]))
    trial = clocks_of(run)
    assert trial.still_clock >= 1
    counter = claim(judge_clocks([trial]), "HLC's counter")
    assert counter.support is Support.UNTESTED
    assert "1 trial(s) left out" in counter.evidence


def test_lamports_lead_claim_needs_different_rates(make_run: Callable[..., Path]) -> None:
    trial = clocks_of(make_run(rates=(3.0, 3.0, 3.0)))
    leads = claim(judge_clocks([trial]), "Lamport's drift")
    assert leads.support is Support.UNTESTED


def made_up(lamport_lead: tuple[float, ...], hlc_lead: tuple[float, ...], n: int) -> TrialClocks:
    return TrialClocks(
        experiment="made-up", name=f"made-up/trial-{n}", epsilon=Epsilon(0.1, "configured skew"),
        rates=(1.0, 2.0, 4.0), lamport_lead=lamport_lead, hlc_lead=hlc_lead,
        hlc_c=(0.0, 0.0, 0.0), bloom_fp=(0.5, 0.5, 0.5), events=30, beyond_epsilon=0, still_clock=0,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("lamport_lead", "hlc_lead", "support"),
    [
        ((3.0, 1.0, 0.0), (0.05, 0.06, 0.04), Support.SUPPORTED),  # slowest VM (ratio 4) leads
        ((3.0, 1.0, 0.0), (0.09, 0.05, 0.0), Support.PARTLY),  # HLC's lead grows too
        ((0.0, 1.0, 3.0), (0.05, 0.06, 0.04), Support.CONTRADICTED),  # the fastest leads
    ],
)
def test_the_lead_claim_reads_both_rank_correlations(
    lamport_lead: tuple[float, ...], hlc_lead: tuple[float, ...], support: Support
) -> None:
    trials = [
        made_up(
            tuple(x + n * 0.01 for x in lamport_lead), tuple(x + n * 0.001 for x in hlc_lead), n
        )
        for n in range(6)
    ]
    leads = claim(judge_clocks(trials), "Lamport's drift")
    assert leads.support is support, leads.evidence


def test_analyze_with_clocks_prints_the_clock_claims(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_analysis_cli import clocklab

    skewed_runs(tmp_path / "runs")
    assert clocklab("analyze", "--json", "--clocks", "hlc", str(tmp_path / "runs")) == 0
    claims = orjson.loads(capsys.readouterr().out)["claims"]
    mine = [c for c in claims if c["statement"].startswith(("HLC", "Lamport's drift"))]
    assert [c["support"] for c in mine] == ["supported"] * 3
    assert clocklab("analyze", str(tmp_path / "runs")) == 0
    assert "HLC stays within ε" not in capsys.readouterr().out


def test_the_report_judges_the_clock_claims_and_draws_the_clocks_side_by_side(
    tmp_path: Path,
) -> None:
    from analysis.report.markup import Gallery
    from analysis.report.page import write_report

    skewed_runs(tmp_path / "runs")
    gallery = Gallery(tmp_path / "figures")
    write_report([tmp_path / "runs"], tmp_path / "report.html", gallery=gallery)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<h2>Clocks side by side</h2>" in page
    assert "HLC stays within ε of physical time" in page
    assert "Lamport&#x27;s drift grows with the rate ratio" in page
    assert (tmp_path / "figures" / "clock-comparison.png").stat().st_size > 10_000


def test_a_trial_no_clock_can_follow_still_gets_a_report_without_clocks(run_dir: Path) -> None:
    from analysis.report.page import write_report

    path = RunDir(run_dir).log_path(1)
    line, _ = find(path, is_event("receive"))
    _, last_send = find(path, is_event("send"), -1)
    doctor(path, line, lambda r: r.update({"msg_id": last_send["msg_ids"][0], "from": 1}))
    output = run_dir.parent / "report.html"
    (analysis,) = write_report([run_dir], output)
    assert analysis.clock_trial is None
    assert "Clocks side by side" not in output.read_text(encoding="utf-8")
