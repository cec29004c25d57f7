"""What PgBouncer and prepared statements cost the worker's hot statements (docs/pgbouncer.md).

    python scripts/pooler_costs.py [N] [ROUNDS]

Needs PostgreSQL on 127.0.0.1:5432 and a PgBouncer in transaction mode on 127.0.0.1:6432
(``source scripts/lib.sh && qt_start_pgbouncer DIR``), both trusting user postgres. Times,
in one client and autocommit, a task-like INSERT, a one-row ``SKIP LOCKED`` claim and a
read of the claim's kind, directly (not prepared: Django's default; prepared:
``prepare_threshold=0``) and through PgBouncer (not prepared: PgBouncer 1.18 cannot keep
prepared statements in transaction mode). Rounds interleave the three paths; it prints
the median microseconds per statement. It creates and drops its own database.
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid

import psycopg
from psycopg.types.json import Jsonb

DB = "qtasks_pooler_costs"
TABLE = """CREATE TABLE t (uuid uuid PRIMARY KEY, status text, queue text, priority int, created_at timestamptz,
    eta timestamptz, args jsonb, kwargs jsonb, worker_id text, lease_token uuid, started_at timestamptz)"""
INSERT = (
    "INSERT INTO t (uuid, status, queue, priority, created_at, eta, args, kwargs) "
    "VALUES (%s, 'new', %s, %s, now(), now(), %s, %s)"
)
CLAIM = (
    "UPDATE t SET status = 'process', worker_id = %s, lease_token = %s, started_at = now() WHERE uuid IN "
    "(SELECT uuid FROM t WHERE status = 'new' AND eta <= now() ORDER BY priority, created_at LIMIT %s "
    "FOR UPDATE SKIP LOCKED) RETURNING uuid, args, kwargs"
)
READ = "SELECT uuid, status, args FROM t WHERE status = 'new' AND eta <= now() ORDER BY priority, created_at LIMIT %s"
PATHS = {
    "direct, not prepared": (5432, None),
    "direct, prepared": (5432, 0),
    "PgBouncer, not prepared": (6432, None),
}


def statement(conn: psycopg.Connection, name: str, i: int) -> None:
    if name == "insert":
        conn.execute(INSERT, [uuid.uuid4(), "default", 0, Jsonb([i]), Jsonb({})], prepare=True)
    elif name == "claim":
        conn.execute(CLAIM, ["w", uuid.uuid4(), 1], prepare=True).fetchall()
    else:
        conn.execute(READ, [1], prepare=True).fetchall()


def main(n: int, rounds: int) -> None:
    admin = psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True)
    admin.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    admin.execute(f"CREATE DATABASE {DB}")
    try:
        with psycopg.connect(f"postgres://postgres@127.0.0.1:5432/{DB}", autocommit=True) as setup:
            setup.execute(TABLE)
            setup.execute("CREATE INDEX ready ON t (priority, created_at) WHERE status = 'new'")
        conns = {
            path: psycopg.connect(
                f"postgres://postgres@127.0.0.1:{port}/{DB}", autocommit=True, prepare_threshold=threshold
            )
            for path, (port, threshold) in PATHS.items()
        }
        times: dict[str, dict[str, list[float]]] = {p: {"insert": [], "claim": [], "read": []} for p in PATHS}
        for _ in range(rounds):
            for path, conn in conns.items():
                for name in ("insert", "read", "claim"):
                    started = time.perf_counter()
                    for i in range(n):
                        statement(conn, name, i)
                    times[path][name].append((time.perf_counter() - started) / n * 1e6)
        for path, by_name in times.items():
            cells = "  ".join(f"{name} {statistics.median(t):5.0f} us" for name, t in by_name.items())
            print(f"{path:26} {cells}")
        for conn in conns.values():
            conn.close()
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        admin.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300, int(sys.argv[2]) if len(sys.argv) > 2 else 9)
