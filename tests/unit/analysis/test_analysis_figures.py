"""Every plot_x draws its data on the axes it is given; figures render to PNG."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from matplotlib.figure import Figure

from analysis.columns import RECEIVE
from analysis.load.runs import load_trial
from analysis.metrics.traces import TrialTraces, traces
from analysis.metrics.trial import trial_metrics
from analysis.report import figures, plot_inputs, plots
from analysis.report.space_time import space_time_window

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def trial_traces(run_dir: Path) -> TrialTraces:
    return traces(load_trial(run_dir))


def axes() -> plots.Axes:
    return Figure().add_subplot()


def test_the_clock_plot_has_one_line_per_vm_with_its_rate_in_the_legend(
    trial_traces: TrialTraces,
) -> None:
    ax = axes()
    plots.plot_clocks(ax, trial_traces)
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels == ["vm0 (1/s)", "vm1 (2/s)", "vm2 (3/s)"]
    assert len(ax.get_lines()) == 3


def test_fault_windows_are_shaded_in_simulated_seconds(run_dir: Path) -> None:
    manifest = orjson.loads((run_dir / "manifest.json").read_bytes())
    start = manifest["started_at"]  # time scale 10: wall second 1 is simulated second 10
    manifest["faults"] = [
        {"kind": "partition", "start": start + 1, "end": start + 2, "targets": [2]}
    ]
    (run_dir / "manifest.json").write_bytes(orjson.dumps(manifest))
    ax = axes()
    plots.plot_queues(ax, traces(load_trial(run_dir)))
    (shade,) = [p for p in ax.patches if p.get_label() == "partition vm2"]
    start, width = shade.get_x(), shade.get_width()
    assert (start, start + width) == (pytest.approx(10.0), pytest.approx(20.0))


def test_the_zoom_shows_the_slowest_vm_around_its_largest_jump(trial_traces: TrialTraces) -> None:
    zoom = plot_inputs.zoom(trial_traces, ticks=20)
    assert zoom.trace.vm == 0 and zoom.end - zoom.start == 20
    steps = (
        zoom.trace.lamport[zoom.start + 1 : zoom.end]
        - zoom.trace.lamport[zoom.start : zoom.end - 1]
    )
    assert steps.max() == (zoom.trace.lamport[1:] - zoom.trace.lamport[:-1]).max()
    ax = axes()
    plots.plot_vm_zoom(ax, zoom)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["internal", "send", "receive"]


def test_event_counts_are_bars_of_each_kind_for_each_vm(run_dir: Path) -> None:
    trial = load_trial(run_dir)
    m = trial_metrics(trial, traces(trial))
    ax = axes()
    plots.plot_event_counts(ax, m)
    heights = [int(bar.get_height()) for bar in ax.patches]
    assert heights == [vm.internal for vm in m.vms] + [vm.send for vm in m.vms] + [
        vm.receive for vm in m.vms
    ]


def test_drift_has_a_line_for_every_vm_but_the_fastest(trial_traces: TrialTraces) -> None:
    ax = axes()
    plots.plot_drift(ax, trial_traces)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["vm0 (1/s)", "vm1 (2/s)"]


def test_jump_histograms_pool_the_receives_of_each_rate(trial_traces: TrialTraces) -> None:
    data = plot_inputs.jumps_by_rate("small", [trial_traces, trial_traces])
    assert [rate for rate, _ in data.jumps] == [1.0, 2.0, 3.0]
    assert len(data.jumps[0][1]) == 2 * int((trial_traces.vms[0].event == RECEIVE).sum())
    ax = axes()
    plots.plot_jump_histograms(ax, data)
    assert ax.get_yscale() == "log"


def test_the_space_time_window_holds_about_the_events_asked_for_and_arrows_point_forward(
    run_dir: Path,
) -> None:
    window = space_time_window(load_trial(run_dir), events=50)
    assert len(window.time) == 50
    assert len(window.arrow_from) > 0
    assert (window.lamport[window.arrow_to] > window.lamport[window.arrow_from]).all()
    assert (window.time[window.arrow_to] >= window.time[window.arrow_from]).all()
    ax = axes()
    plots.plot_space_time(ax, window)
    assert len(ax.texts) == 50 + len(
        window.arrow_from
    )  # a clock label per event, an arrow per message


def test_a_grid_renders_one_png_and_hides_unused_cells(trial_traces: TrialTraces) -> None:
    png = figures.grid(plots.plot_clocks, [trial_traces] * 4, columns=3)
    assert png.startswith(PNG)
    assert figures.single(plots.plot_queues, trial_traces).startswith(PNG)


def test_the_model_fit_puts_each_vm_at_predicted_against_measured(
    run_dir: Path, trial_traces: TrialTraces
) -> None:
    from analysis.metrics.summaries import summarize

    metrics = trial_metrics(load_trial(run_dir), trial_traces)
    share, growth = plot_inputs.model_fits([summarize("small", [metrics])])
    ((name, predicted, measured),) = share.points
    assert name == "small"
    assert list(predicted) == [p.receive_share for p in metrics.predictions]
    assert list(measured) == [vm.receive / vm.ticks for vm in metrics.vms]
    assert list(growth.points[0][2]) == [vm.queue_final / metrics.duration for vm in metrics.vms]
    ax = axes()
    plots.plot_model_fit(ax, share)
    assert len(ax.collections[0].get_offsets()) == 3  # one dot per VM
    assert ax.get_xlim() == ax.get_ylim()  # square: the diagonal is the exact model
