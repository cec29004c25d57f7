"""Benchmark: qtasks_django against the substrate's limits, in one run.

Usage (PostgreSQL; the database must exist):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/qtasks_bench python bench/run.py [--tasks 2000] [--concurrency 4]

Measures, on the same machine and database, in this order:
  raw_insert   single-row INSERT + COMMIT with psycopg (the enqueue ceiling)
  enqueue      add.add_task(...) through qtasks_django (validation + INSERT + NOTIFY)
  raw_claim    UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP LOCKED LIMIT 1), one row per txn
  worker       an in-process Worker draining no-op tasks (claim, run, fenced finish)
and prints each rate and its ratio to the matching raw rate. Numbers from different runs
are not comparable (the machines are noisy); ratios within one run are.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=4)
    options = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("bench/run.py measures PostgreSQL: set DATABASE_URL=postgres://...")
    call_command("migrate", verbosity=0)
    results = {
        "raw_insert": raw_insert(options.tasks),
        "enqueue": enqueue(options.tasks),
        "raw_claim": raw_claim(options.tasks),
        "worker": worker(options.tasks, options.concurrency),
    }
    print(f"{'measure':<12} {'per second':>12}")
    for name, rate in results.items():
        print(f"{name:<12} {rate:>12.0f}")
    print(f"enqueue / raw_insert = {results['enqueue'] / results['raw_insert']:.2f}")
    print(f"worker  / raw_claim  = {results['worker'] / results['raw_claim']:.2f}")


def _psycopg():
    import psycopg
    from django.db import connection

    params = dict(connection.get_connection_params())
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params, autocommit=True)


def raw_insert(n: int) -> float:
    with _psycopg() as conn:
        conn.execute("DROP TABLE IF EXISTS bench_raw")
        conn.execute("CREATE TABLE bench_raw (id uuid primary key, name text, args jsonb, status text, priority int, created timestamptz)")
        start = time.perf_counter()
        for _ in range(n):
            conn.execute(
                "INSERT INTO bench_raw VALUES (gen_random_uuid(), 'noop', '[]', 'new', 0, now())"
            )
        return n / (time.perf_counter() - start)


def raw_claim(n: int) -> float:
    with _psycopg() as conn:
        conn.execute("CREATE INDEX IF NOT EXISTS bench_raw_ready ON bench_raw (priority, created) WHERE status = 'new'")
        start = time.perf_counter()
        for _ in range(n):
            conn.execute(
                "UPDATE bench_raw SET status = 'process' WHERE id = (SELECT id FROM bench_raw WHERE status = 'new' "
                "ORDER BY priority, created FOR UPDATE SKIP LOCKED LIMIT 1)"
            )
        elapsed = time.perf_counter() - start
        conn.execute("DROP TABLE bench_raw")
        return n / elapsed


def enqueue(n: int) -> float:
    from bench.tasks import noop
    from qtasks_django.models import TaskRecord

    TaskRecord.objects.all().delete()
    start = time.perf_counter()
    for i in range(n):
        noop.add_task(i)
    return n / (time.perf_counter() - start)


def worker(n: int, concurrency: int) -> float:
    from qtasks_django import app
    from qtasks_django.models import TaskRecord
    from qtasks_django.worker import Worker

    assert TaskRecord.objects.filter(status="new").count() == n
    start = time.perf_counter()
    Worker(app=app, concurrency=concurrency, burst=True, poll_interval=0.05).run()
    elapsed = time.perf_counter() - start
    done = TaskRecord.objects.filter(status="success").count()
    if done != n:
        sys.exit(f"worker finished {done} of {n} tasks")
    return n / elapsed


if __name__ == "__main__":
    main()
