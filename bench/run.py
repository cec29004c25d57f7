"""Benchmark qtasks_django against PostgreSQL's own limits, in one run.

    python -m bench [--quick] [--peers] [--docs] [--json PATH] [--markdown PATH|-] [--svg PATH]

DATABASE_URL chooses the PostgreSQL database (default
postgres://postgres@127.0.0.1:5432/qtasks_bench; created when missing, and emptied:
use a database of its own). Measures, each --repeat times (median reported):

  raw_insert / raw_claim  psycopg alone: single-row INSERT+COMMIT, and one-row
                          FOR UPDATE SKIP LOCKED claim+COMMIT, on a copy of the task table
  enqueue_single / _bulk  noop.add_task(i) one per call; app.add_tasks() in chunks
  drain_*                 `manage.py qtasks_worker --burst --processes 1|2` draining a
                          backlog of sync and of async no-op tasks (first start to last finish)
  drain_sync_p4|8|16,     the sync drain with --processes 4, 8 and 16 too; each rate of the
  scale_*                 series 1..16 divided by the series' best
  drain_*_history, flat_* the 1-process drains again with 1,000,000 finished rows in the table
  *_unique, drain_*_p1_*  flow control: add_task/add_tasks of a unique=True task; 1-process
  flow_*                  drains of no-ops behind a concurrency limit (= the worker's slots),
                          a limit of 1 per key over 100 keys, a rate limit of 1,000,000/s, and
                          unique=True; each divided by the plain one of the same round
                          (the limited drains run over the history too)
  latency_*               enqueue→start at 20 tasks/s to an idle worker (the task records its start)
  herd_*                  latency of `stamp` at 20 tasks/s to 1, then 16, idle worker processes,
                          and the database's transactions per task beyond the idle ones
  rss_*                   peak RSS (VmHWM) of every worker process and its children; and
  rss_worker_tree         the peak sum of VmRSS over a worker and its task processes
  peer_* (--peers)        Celery, Dramatiq and Procrastinate, each in its own virtualenv
                          (.venv/peers/<peer>, built from bench/peers/requirements-<peer>.txt):
                          enqueue one per call, bulk enqueue, drains with 1 and 2 worker
                          processes, enqueue→start latency (PEERS_REDIS_URL, default
                          redis://127.0.0.1:6379/8, is flushed; <database>_<peer> is created)

Prints a table with ratios to raw_insert and the issue's targets. --docs rewrites the
results block of docs/performance.md (and with --peers its peers block), docs/performance.json
and docs/img/performance.svg;
--from-json PATH reports a run saved with --json again, measuring nothing.
Ratios within one run are meaningful; absolute numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.peers.client import PeerBench
    from bench.plan import Plan
    from bench.report import Measure

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="A small smoke run (well under a minute).")
    parser.add_argument(
        "--repeat", type=int, default=None, help="Runs per measure (default 3; 1 with --quick)."
    )
    parser.add_argument(
        "--concurrency", type=int, default=None, help="qtasks_worker --concurrency (default: QTASKS)."
    )
    parser.add_argument(
        "--peers", action="store_true", help="Measure Celery, Dramatiq and Procrastinate too (bench/peers)."
    )
    parser.add_argument("--json", type=Path, default=None, help="Write the results as JSON here.")
    parser.add_argument("--markdown", default=None, help="Write the results as Markdown here ('-': stdout).")
    parser.add_argument("--svg", type=Path, default=None, help="Write the bar chart here.")
    parser.add_argument(
        "--docs", action="store_true", help="Update docs/performance.md, .json and img/performance.svg."
    )
    parser.add_argument(
        "--from-json", type=Path, default=None, help="Measure nothing: report a saved --json run again."
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    if options.from_json:
        return rewrite(options)
    from bench.plan import Plan

    plan = Plan.quick(options.concurrency) if options.quick else Plan(concurrency=options.concurrency)
    if options.repeat:
        plan = dataclasses.replace(plan, repeat=options.repeat)
    _setup_django()
    from bench import output
    from bench.plan import measures_of, targets
    from bench.runner import Runner

    measures = measures_of(plan)
    peers = _prepare_peers(plan, measures) if options.peers else None
    meta = output.machine_facts(argv if argv is not None else sys.argv[1:], quick=options.quick)
    started = time.perf_counter()
    errors = Runner(plan, measures, peers).run()
    meta.update(seconds=round(time.perf_counter() - started, 1), errors=errors, load_after=os.getloadavg()[0])
    meta.update(repeat=plan.repeat, peer_versions=peers.versions if peers else {})
    output.write_all(measures, targets(), meta, options)
    return 1 if errors else 0


def rewrite(options: argparse.Namespace) -> int:
    """Print and write the outputs of a saved run again (e.g. after changing the chart)."""
    import json

    from bench import output
    from bench.plan import targets
    from bench.report import Measure

    saved = json.loads(options.from_json.read_text())
    fields = ("label", "unit", "runs", "statistic")
    measures = {key: Measure(key, *(m[f] for f in fields)) for key, m in saved["measures"].items()}
    output.write_all(measures, targets(), saved["meta"], options)
    return 0


def _prepare_peers(plan: Plan, measures: dict[str, Measure]) -> PeerBench:
    """Build the peers' virtualenvs and databases when needed; add their measures to the run's."""
    from django.db import connection

    from bench.peers.client import PeerBench
    from bench.peers.table import PEERS, peer_measures

    peers = PeerBench.prepare(list(PEERS), connection.settings_dict)
    measures.update({m.key: m for m in peer_measures(peers.names, plan.bulk_chunk)})
    return peers


def _setup_django() -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from bench.output import ensure_database

    if connection.vendor != "postgresql":
        sys.exit("the benchmark measures PostgreSQL: set DATABASE_URL=postgres://...")
    ensure_database()
    call_command("migrate", verbosity=0)


if __name__ == "__main__":
    sys.exit(main())
