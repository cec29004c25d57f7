"""The benchmark's pure helpers: statistics, ratios to the substrate, targets, tables, the chart."""

from __future__ import annotations

import ast
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bench import plot
from bench.output import BLOCK_END, BLOCK_START, replace_block
from bench.plan import (
    FLOW_VARIANTS,
    HERD_PROCESS_COUNTS,
    HERD_RATIO,
    HISTORY_VARIANTS,
    SCALE_PROCESS_COUNTS,
    TASK_KINDS,
    Plan,
    cost_key,
    drain_key,
    flat_key,
    flow_task,
    herd_key,
    history_tasks,
    measures_of,
    scale_key,
    targets,
)
from bench.report import (
    Measure,
    Target,
    format_number,
    markdown_table,
    median,
    percentile,
    ratio,
    rows,
    shares_of_best,
    text_table,
)
from bench.workers import transactions_per_task, whole_windows

SVG = "{http://www.w3.org/2000/svg}"


def test_median_of_odd_and_even_counts() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5
    with pytest.raises(ValueError, match="no values"):
        median([])


def test_percentile_is_a_value_that_occurred() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # 100 .. 1, unsorted on purpose
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([1.0, 2.0, 30.0], 99) == 30.0


def test_ratio_is_none_without_both_numbers() -> None:
    assert ratio(1500.0, 1000.0) == 1.5
    assert ratio(None, 1000.0) is None
    assert ratio(1500.0, None) is None
    assert ratio(1500.0, 0.0) is None


def test_each_rate_of_a_series_is_a_share_of_its_best() -> None:
    shares = shares_of_best({1: 1000.0, 2: 1250.0, 8: 1125.0, 16: None})

    assert shares == {1: 0.8, 2: 1.0, 8: 0.9, 16: None}
    assert shares_of_best({1: None}) == {1: None}


def test_a_task_costs_the_transactions_beyond_the_idle_workers() -> None:
    assert transactions_per_task(busy=700, idle=100, tasks=200) == 3.0
    assert transactions_per_task(busy=100, idle=100, tasks=200) == 0.0


def test_the_herd_counts_over_whole_rescue_intervals() -> None:
    assert whole_windows(12.6, 15.0) == 15.0
    assert whole_windows(15.2, 15.0) == 30.0
    assert whole_windows(0.0, 15.0) == 15.0


def test_a_measure_reports_its_median_or_its_maximum() -> None:
    assert Measure("a", "A", "tasks/s", runs=[10.0, 30.0, 20.0]).value == 20.0
    assert Measure("b", "B", "MB", runs=[10.0, 30.0, 20.0], statistic="max").value == 30.0
    assert Measure("c", "C", "ms").value is None


def run_with(**values: float) -> dict[str, Measure]:
    units = {"raw_insert": "tasks/s", "drain": "tasks/s", "latency": "ms"}
    return {key: Measure(key, key.title(), units[key], runs=[value]) for key, value in values.items()}


def test_targets_compare_ratios_to_the_substrate_or_plain_values() -> None:
    measures = run_with(raw_insert=1000.0, drain=1200.0, latency=4.0)
    drain_goal = Target("drain", 1.0, relative_to="raw_insert")
    latency_goal = Target("latency", 3.0, higher_is_better=False)

    assert drain_goal.actual(measures) == 1.2
    assert drain_goal.met(measures) is True
    assert latency_goal.met(measures) is False
    assert Target("missing", 1.0).met(measures) is None
    assert drain_goal.describe() == "≥ 1x raw INSERT"
    assert latency_goal.describe() == "≤ 3"


def test_table_rows_show_the_ratio_only_for_rates() -> None:
    measures = run_with(raw_insert=1000.0, drain=500.0, latency=2.5)
    goals = [Target("drain", 1.0, relative_to="raw_insert"), Target("latency", 3.0, higher_is_better=False)]

    assert rows(measures, goals) == [
        ["Raw_Insert", "1,000 tasks/s", "1.00x", "", ""],
        ["Drain", "500 tasks/s", "0.50x", "≥ 1x raw INSERT", "NOT met"],
        ["Latency", "2.50 ms", "", "≤ 3", "met"],
    ]


def test_numbers_are_short_and_missing_ones_say_so() -> None:
    assert format_number(12345.6, "tasks/s") == "12,346 tasks/s"
    assert format_number(42.25, "ms") == "42.2 ms"
    assert format_number(0.874, "x") == "0.87x"
    assert format_number(None, "ms") == "n/a"


def test_text_and_markdown_tables_have_a_line_per_row() -> None:
    table = [["a", "1", "", "", ""], ["longer name", "22", "0.5x", "≥ 1", "met"]]

    text = text_table(table).splitlines()
    markdown = markdown_table(table).splitlines()

    assert len(text) == len(markdown) == 4
    assert text[2].index("1") == text[3].index("22") == len("longer name  ")  # aligned on the longest cell
    assert markdown[1] == "|---|---|---|---|---|"
    assert markdown[3] == "| longer name | 22 | 0.5x | ≥ 1 | met |"


def test_every_issue_target_is_checked() -> None:
    goals = {(t.key, t.relative_to): t.bound for t in targets()}

    assert goals[("enqueue_single", "raw_insert")] == 0.8
    assert goals[("enqueue_bulk", "raw_insert")] == 8.0
    for kind in ("sync", "async"):
        assert goals[(f"drain_{kind}_p1", "raw_insert")] == goals[(f"drain_{kind}_p2", "raw_insert")] == 1.0
        assert goals[(f"latency_{kind}_p50", None)] == 3.0
        assert goals[(f"latency_{kind}_p99", None)] == 6.0
        assert goals[(f"doubling_{kind}", None)] == 1.8
        assert goals[(f"flat_{kind}", None)] == 0.8
    assert goals[("rss_worker", None)] == goals[("rss_task_child", None)] == 64.0
    assert goals[("scale_sync_p8", None)] == goals[("scale_sync_p16", None)] == 0.9
    assert goals[(HERD_RATIO, None)] == 1.5
    assert goals[("rss_worker_tree", None)] == 150.0
    assert set(measures_of(Plan())) >= {key for key, _ in goals}


def test_each_flow_drain_has_its_task_its_rate_and_its_ratio_to_the_plain_drain() -> None:
    measures = measures_of(Plan())
    bench_tasks = Path(__file__).resolve().parents[2] / "bench" / "tasks.py"
    functions = {
        node.name: isinstance(node, ast.AsyncFunctionDef)
        for node in ast.parse(bench_tasks.read_text()).body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }

    for kind in TASK_KINDS:
        for variant in FLOW_VARIANTS:
            assert functions[flow_task(kind, variant)] is (kind == "async")
            assert measures[drain_key(kind, 1, variant=variant)].unit == "tasks/s"
            assert measures[cost_key(kind, variant)].unit == "x"
        for variant in HISTORY_VARIANTS:
            assert measures[drain_key(kind, 1, history=True, variant=variant)].unit == "tasks/s"
            assert measures[flat_key(kind, variant)].unit == "x"
    assert drain_key("async", 1, history=True, variant="rate") == "drain_async_p1_rate_history"
    assert drain_key("sync", 2) == "drain_sync_p2"  # the plain drains keep their keys
    assert flat_key("sync") == "flat_sync"
    assert set(history_tasks()) == {"noop"} | {
        flow_task(kind, variant) for kind in TASK_KINDS for variant in HISTORY_VARIANTS
    }
    goals = {t.key: t.bound for t in targets()}
    assert all(goals[flat_key(kind, v)] == 0.8 for kind in TASK_KINDS for v in HISTORY_VARIANTS)


def test_the_scale_out_series_and_the_herd_have_their_measures() -> None:
    measures = measures_of(Plan())

    assert SCALE_PROCESS_COUNTS == (1, 2, 4, 8, 16)
    for processes in SCALE_PROCESS_COUNTS:
        assert measures[drain_key("sync", processes)].unit == "tasks/s"
        assert measures[scale_key(processes)].unit == "x"
    assert measures["drain_sync_p16"].label == "drain: sync, 16 processes"
    assert HERD_PROCESS_COUNTS == (1, 16)
    for processes in HERD_PROCESS_COUNTS:
        assert measures[herd_key(processes, "p50")].unit == measures[herd_key(processes, "p99")].unit == "ms"
        assert measures[herd_key(processes, "transactions")].unit == "per task"
    assert (
        next(t for t in targets() if t.key == HERD_RATIO).met(
            {HERD_RATIO: Measure(HERD_RATIO, "herd", "per task", runs=[2.5])}
        )
        is False
    )


def test_the_chart_is_valid_svg_with_a_bar_per_measured_value() -> None:
    measures = measures_of(Plan())
    measures["raw_insert"].runs = [2000.0]
    measures["drain_sync_p1"].runs = [2500.0]
    measures["drain_sync_p1"].label = "<drain & co>"
    measures["latency_sync_p50"].runs = [2.0]
    measures["rss_worker"].runs = [50.0, 70.0]

    document = plot.svg(plot.panels(measures, targets()), caption="run <1>")

    root = ET.fromstring(document)
    texts = [t.text for t in root.iter(f"{SVG}text")]
    bars = [r for r in root.iter(f"{SVG}rect") if r.get("height") != "100%"]
    assert len(bars) == 3  # the measures without runs are left out
    assert "<drain & co>" in texts and "run <1>" in texts
    assert "1.25x (2,500/s)" in texts
    assert "70.0 MB" in texts  # peak RSS is the maximum, and above its target
    fills = {r.get("fill") for r in bars}
    assert fills == {plot.COLORS[True], plot.COLORS[False]}


def test_the_docs_page_gets_new_results_between_its_markers(tmp_path) -> None:
    page = tmp_path / "performance.md"
    page.write_text(f"# Title\n\nMethod.\n\n{BLOCK_START}\nold results\n{BLOCK_END}\n\nAfter.\n")

    replace_block(page, "new results")
    replace_block(page, "newer results")

    assert page.read_text() == f"# Title\n\nMethod.\n\n{BLOCK_START}\nnewer results\n{BLOCK_END}\n\nAfter.\n"


def test_a_page_without_markers_is_left_alone(tmp_path) -> None:
    page = tmp_path / "performance.md"
    page.write_text("# Title\n")

    with pytest.raises(SystemExit, match="no <!-- bench:results:start -->"):
        replace_block(page, "results")

    assert page.read_text() == "# Title\n"
