"""``python -m bench --peers``: its pure parts (no peer, no virtualenv, no database).

The requirements pins, the virtualenvs' staleness check, the driver's JSON and stamps,
a round's peer measures, and the peers table in the terminal and in the docs page.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench.output import BLOCK_END, BLOCK_START, notes, replace_block
from bench.peers import harness, venvs
from bench.peers.client import parse_result, peer_database_url
from bench.peers.table import END, HEADER, PEERS, START, markdown_block, peer_key, peer_measures, rows
from bench.plan import Plan, measures_of
from bench.report import Measure, markdown_table, text_table
from bench.runner import Runner


def test_every_peer_pins_every_package_it_installs() -> None:
    for peer in PEERS:
        lines = venvs.requirements_file(peer).read_text().splitlines()
        packages = [line for line in lines if line and not line.startswith("#")]
        assert any(line.lower().startswith(f"{peer}==") for line in packages), peer
        assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.]+", line) for line in packages), peer


def test_a_virtualenv_is_rebuilt_when_its_requirements_or_interpreter_change(tmp_path: Path) -> None:
    built = venvs.digest(b"celery==5.7.0\n", "/usr/bin/python3.12")
    assert venvs.digest(b"celery==5.7.0\n", "/usr/bin/python3.12") == built
    assert venvs.digest(b"celery==5.7.1\n", "/usr/bin/python3.12") != built
    assert venvs.digest(b"celery==5.7.0\n", "/opt/python3.12") != built

    venv = tmp_path / "celery"
    assert not venvs.is_current(venv, built)  # never built
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    assert not venvs.is_current(venv, built)  # a build that stopped before its stamp
    (venv / venvs.STAMP).write_text(built + "\n")
    assert venvs.is_current(venv, built)
    assert not venvs.is_current(venv, venvs.digest(b"celery==5.7.1\n", "/usr/bin/python3.12"))


def test_the_driver_result_is_its_last_json_line() -> None:
    stdout = 'starting\n{"rate": 1.0}\nnoise\n{"peer": "celery", "rate": 2.5, "version": "5.7.0"}\n'
    assert parse_result(stdout) == {"peer": "celery", "rate": 2.5, "version": "5.7.0"}
    with pytest.raises(ValueError, match="no result"):
        parse_result("Traceback (most recent call last):\n")


def test_each_peer_gets_a_database_named_after_the_bench_one() -> None:
    settings = {"NAME": "qtasks_bench", "USER": "postgres", "HOST": "127.0.0.1", "PORT": 5433, "PASSWORD": ""}
    assert peer_database_url(settings, "celery") == "postgresql://postgres@127.0.0.1:5433/qtasks_bench_celery"
    settings.update(PASSWORD="secret", PORT="")
    assert peer_database_url(settings, "procrastinate").endswith(
        ":secret@127.0.0.1:5432/qtasks_bench_procrastinate"
    )


def test_stamps_map_each_call_to_its_start_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "stamps"
    assert harness.read_stamps(path) == {}
    monkeypatch.setenv(harness.STAMP_FILE, str(path))
    started = harness.record_start(-1)
    harness.record_start(7)
    stamps = harness.read_stamps(path)
    assert stamps[-1] == started
    assert set(stamps) == {-1, 7}


class FakePeers:
    """What a round asks of ``PeerBench``, answered without a peer."""

    names = ["celery", "procrastinate"]

    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def enqueue_rate(self, peer: str, count: int) -> float:
        self.calls.append(("enqueue", peer, count))
        return 1000.0

    def bulk_rate(self, peer: str, count: int, chunk: int) -> float | None:
        self.calls.append(("bulk", peer, count, chunk))
        return 9000.0

    def drain_rate(self, peer: str, count: int, processes: int) -> float:
        self.calls.append(("drain", peer, count, processes))
        if processes == 2:
            raise RuntimeError("a worker exited 1")
        return 300.0

    def latencies_ms(self, peer: str, per_second: float, seconds: float) -> list[float]:
        return [float(v) for v in range(1, 101)]


def test_a_round_measures_each_peer_and_notes_a_failure_without_stopping() -> None:
    plan = Plan.quick()
    peers = FakePeers()
    measures = measures_of(plan)
    measures.update({m.key: m for m in peer_measures(peers.names, plan.bulk_chunk)})
    runner = Runner(plan, measures, peers)  # type: ignore[arg-type]
    for peer in peers.names:
        runner.peer_round(peer)

    assert (
        "bulk",
        "celery",
        plan.bulk_enqueues,
        plan.bulk_chunk,
    ) not in peers.calls  # Celery has no bulk API
    assert ("bulk", "procrastinate", plan.bulk_enqueues, plan.bulk_chunk) in peers.calls
    assert ("drain", "celery", plan.peer_backlog, 1) in peers.calls
    assert measures[peer_key("celery", "drain_p1")].runs == [300.0]
    assert measures[peer_key("celery", "drain_p2")].runs == []
    assert measures[peer_key("procrastinate", "latency_p50")].runs == [50.0]
    assert measures[peer_key("procrastinate", "latency_p99")].runs == [99.0]
    assert len(runner.errors) == 2
    assert runner.errors[0].startswith("peer_celery_drain_p2: RuntimeError: a worker exited 1")


def run_measures() -> dict[str, Measure]:
    values = {
        "raw_insert": 1600.0,
        "enqueue_single": 1200.0,
        "enqueue_bulk": 15000.0,
        "drain_sync_p1": 1100.0,
        "drain_sync_p2": 1300.0,
        "latency_sync_p50": 5.5,
        "latency_sync_p99": 11.0,
        peer_key("dramatiq", "enqueue_single"): 4500.0,
        peer_key("dramatiq", "drain_p1"): 2000.0,
        peer_key("dramatiq", "drain_p2"): 4000.0,
        peer_key("dramatiq", "latency_p50"): 17.6,
        peer_key("dramatiq", "latency_p99"): 70.0,
        peer_key("procrastinate", "enqueue_single"): 1881.0,
        peer_key("procrastinate", "enqueue_bulk"): 18527.0,
        peer_key("procrastinate", "drain_p1"): 397.0,
        peer_key("procrastinate", "latency_p50"): 4.0,
        peer_key("procrastinate", "latency_p99"): 5.9,
    }
    return {key: Measure(key, key, "tasks/s", [value]) for key, value in values.items()}


def test_the_peers_table_has_ours_each_peer_and_the_raw_insert() -> None:
    table = rows(run_measures(), {"dramatiq": "2.2.1", "procrastinate": "3.10.0"})
    assert [row[0].split(" ")[0] for row in table] == ["qtasks_django", "Dramatiq", "Procrastinate", "raw"]
    assert table[0][1:] == ["1,200", "15,000", "1,100", "1,300", "5.50 / 11.0"]
    assert table[1][:3] == ["Dramatiq 2.2.1 (Redis broker, no results stored)", "4,500", "-"]  # no bulk API
    assert table[2][2:5] == ["18,527", "397", "n/a"]  # a drain that failed in every round
    assert table[3][:2] == ["raw PostgreSQL INSERT+COMMIT, 1 client", "1,600"]
    assert all(len(row) == len(HEADER) for row in table)
    assert text_table(table, HEADER).splitlines()[0].startswith("system")


def test_peer_measures_have_a_bulk_one_only_where_the_peer_has_the_api() -> None:
    keys = {m.key for m in peer_measures(list(PEERS), 1000)}
    assert peer_key("procrastinate", "enqueue_bulk") in keys
    assert peer_key("celery", "enqueue_bulk") not in keys
    assert peer_key("dramatiq", "enqueue_bulk") not in keys
    assert len(keys) == 6 * len(PEERS) - 2


def meta(**changes: object) -> dict[str, object]:
    base = {
        "command": "python -m bench --peers",
        "date": "2026-12-06 10:00 UTC",
        "commit": "abc1234",
        "uncommitted_changes": False,
        "quick": False,
        "repeat": 3,
        "load_before": 0.1,
        "peer_versions": {"celery": "5.7.0", "dramatiq": "2.2.1"},
    }
    return {**base, **changes}


def test_the_docs_page_gets_the_peers_table_between_its_own_markers(tmp_path: Path) -> None:
    page = tmp_path / "performance.md"
    page.write_text(f"# P\n{BLOCK_START}\nresults\n{BLOCK_END}\n## Peers\n{START}\nold\n{END}\nend\n")
    table = markdown_table(rows(run_measures(), {"dramatiq": "2.2.1"}), HEADER)
    replace_block(page, markdown_block(table, meta()), START, END)
    text = page.read_text()
    assert f"{BLOCK_START}\nresults\n{BLOCK_END}" in text  # the results block is left as it was
    peers_block = text.split(START)[1].split(END)[0]
    assert "`python -m bench --peers`" in peers_block
    assert "median of 3 rounds" in peers_block
    assert "| Dramatiq 2.2.1 (Redis broker, no results stored) | 4,500 | - |" in peers_block
    assert "old" not in peers_block and text.endswith("end\n")


def test_a_quick_run_and_a_busy_machine_say_so_in_the_docs_block() -> None:
    block = markdown_block("| table |", meta(quick=True, repeat=1), ["Load average was 3.00 at the start"])
    assert "median of 1 round (a --quick smoke run" in block
    assert "\n* Load average was 3.00 at the start\n\n| table |" in block


def test_the_notes_say_which_peers_were_measured() -> None:
    assert (
        notes(meta())[0] == "Peers: Celery 5.7.0, Dramatiq 2.2.1, measured in the same run (the peers table)."
    )
    assert "not measured" in notes(meta(peer_versions={}))[0]
    # A run saved before --peers existed: its meta has no peer_versions.
    saved = json.loads(json.dumps({k: v for k, v in meta().items() if k != "peer_versions"}))
    assert "not measured" in notes(saved)[0]
