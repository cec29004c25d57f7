"""The peers table: which peers, the keys of their measures, and the rows beside qtasks_django's.

Pure: measures in, rows and Markdown out (``bench.output`` prints and writes them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.report import SUBSTRATE, Measure, format_number

PREFIX = "peer_"


@dataclass(frozen=True)
class Peer:
    label: str
    setup: str
    """Broker and store, as the table says them."""
    has_bulk: bool
    uses_postgres: bool
    """Whether it needs a PostgreSQL database of its own (``<bench database>_<peer>``)."""


PEERS = {
    "celery": Peer("Celery", "Redis broker, results in PostgreSQL", has_bulk=False, uses_postgres=True),
    "dramatiq": Peer("Dramatiq", "Redis broker, no results stored", has_bulk=False, uses_postgres=False),
    "procrastinate": Peer(
        "Procrastinate", "PostgreSQL, job status, no results", has_bulk=True, uses_postgres=True
    ),
}
METRICS = {
    "enqueue_single": ("enqueue, 1 per call", "tasks/s"),
    "enqueue_bulk": ("enqueue, bulk", "tasks/s"),
    "drain_p1": ("drain, 1 process", "tasks/s"),
    "drain_p2": ("drain, 2 processes", "tasks/s"),
    "latency_p50": ("enqueue→start p50", "ms"),
    "latency_p99": ("enqueue→start p99", "ms"),
}
OURS = {
    "enqueue_single": "enqueue_single",
    "enqueue_bulk": "enqueue_bulk",
    "drain_p1": "drain_sync_p1",
    "drain_p2": "drain_sync_p2",
    "latency_p50": "latency_sync_p50",
    "latency_p99": "latency_sync_p99",
}
"""Each column's measure of qtasks_django in the same run (its sync tasks, as the peers' are)."""
HEADER = [
    "system",
    "enqueue/s",
    "bulk/s",
    "drain/s, 1 process",
    "drain/s, 2 processes",
    "p50 / p99 ms",
]
START = "<!-- bench:peers:start -->"
END = "<!-- bench:peers:end -->"


def peer_key(peer: str, metric: str) -> str:
    return f"{PREFIX}{peer}_{metric}"


def is_peer_key(key: str) -> bool:
    return key.startswith(PREFIX)


def peer_measures(peers: list[str], bulk_chunk: int) -> list[Measure]:
    """Return the measures of ``peers``, no runs yet (the bulk one only for a peer with that API)."""
    items = []
    for peer in peers:
        for metric, (label, unit) in METRICS.items():
            if metric == "enqueue_bulk":
                if not PEERS[peer].has_bulk:
                    continue
                label = f"enqueue, bulk, {bulk_chunk:,} per call"
            items.append(Measure(peer_key(peer, metric), f"{PEERS[peer].label}: {label}", unit))
    return items


def rows(measures: dict[str, Measure], versions: dict[str, str]) -> list[list[str]]:
    """Return qtasks_django's row, one per measured peer, and the raw INSERT+COMMIT row."""

    def value(key: str) -> float | None:
        return measures[key].value if key in measures else None

    def row(system: str, key_of: dict[str, str], has_bulk: bool = True) -> list[str]:
        cells = [system]
        for metric in ("enqueue_single", "enqueue_bulk", "drain_p1", "drain_p2"):
            cells.append(
                format_number(value(key_of[metric])) if has_bulk or metric != "enqueue_bulk" else "-"
            )
        p50, p99 = (value(key_of[m]) for m in ("latency_p50", "latency_p99"))
        cells.append(f"{format_number(p50)} / {format_number(p99)}")
        return cells

    table = [row("qtasks_django (`qtasks_worker --processes N`)", OURS)]
    for peer, version in versions.items():
        spec = PEERS[peer]
        keys = {metric: peer_key(peer, metric) for metric in METRICS}
        table.append(row(f"{spec.label} {version} ({spec.setup})", keys, spec.has_bulk))
    table.append(["raw PostgreSQL INSERT+COMMIT, 1 client", format_number(value(SUBSTRATE)), "", "", "", ""])
    return table


def markdown_block(table_markdown: str, meta: dict[str, Any], notes: Sequence[str] = ()) -> str:
    """Return what docs/performance.md shows between the peers markers (``notes`` as a list under the line)."""
    rounds = meta.get("repeat", 3)
    return "\n".join(
        [
            f"Produced by `{meta['command']}` on {meta['date']}, commit `{meta['commit'] or '?'}`"
            f"{' plus uncommitted changes' if meta['uncommitted_changes'] else ''}, "
            f"median of {rounds} round{'s' if rounds != 1 else ''}"
            f"{' (a --quick smoke run: small sizes, numbers that mean little)' if meta['quick'] else ''}.",
            *(["", *(f"* {note}" for note in notes)] if notes else []),
            "",
            table_markdown,
        ]
    )
