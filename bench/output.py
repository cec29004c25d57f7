"""Where a run's results go: the terminal, JSON, Markdown, the SVG chart and the docs page."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import plot, report
from bench.peers import table as peers_table
from bench.report import Measure, Target

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BLOCK_START = "<!-- bench:results:start -->"
BLOCK_END = "<!-- bench:results:end -->"
BUSY_LOAD = 0.5
"""A load average above this at the start means something else was running."""


def ensure_database(name: str | None = None) -> None:
    """Create the benchmark's database (or the database ``name`` beside it) when missing."""
    import psycopg
    from django.db import connection
    from psycopg import sql

    params = dict(connection.get_connection_params())
    params.pop("cursor_factory", None)
    params.pop("context", None)
    name = name or params.pop("dbname")
    params.pop("dbname", None)
    with psycopg.connect(**params, dbname="postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def machine_facts(argv: Sequence[str], *, quick: bool) -> dict[str, Any]:
    """Return what the numbers depend on: versions, CPU, load, the command and the commit."""
    import django

    from bench.substrate import server_facts

    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["python -m bench", *argv]),
        "quick": quick,
        "commit": _git("rev-parse", "--short", "HEAD"),
        "uncommitted_changes": bool(_git("status", "--porcelain")),
        "python": platform.python_version(),
        "django": django.get_version(),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "load_before": os.getloadavg()[0],
        **server_facts(),
    }


def _git(*args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return ""
    return done.stdout.strip()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def write_all(
    measures: dict[str, Measure], targets: list[Target], meta: dict[str, Any], options: argparse.Namespace
) -> None:
    """Print the table, then write each output the options ask for."""
    ours = {key: m for key, m in measures.items() if not peers_table.is_peer_key(key)}
    table = report.rows(ours, targets)
    print(report.text_table(table))
    peers = peers_table.rows(measures, meta["peer_versions"]) if meta.get("peer_versions") else None
    if peers:
        print()
        print(report.text_table(peers, peers_table.HEADER))
    print("\n".join(notes(meta)))
    document = report.to_json(measures, targets, meta)
    chart = plot.svg(plot.panels(ours, targets), caption=caption(meta))
    markdown = results_block(table, meta)
    peers_markdown = (
        peers_table.markdown_block(report.markdown_table(peers, peers_table.HEADER), meta, notes(meta)[1:])
        if peers
        else ""
    )
    if options.json:
        options.json.write_text(json.dumps(document, indent=2, default=str) + "\n")
    if options.markdown == "-":
        print("\n\n".join(filter(None, [markdown, peers_markdown])))
    elif options.markdown:
        Path(options.markdown).write_text("\n\n".join(filter(None, [markdown, peers_markdown])) + "\n")
    if options.svg:
        options.svg.write_text(chart)
    if options.docs:
        (DOCS / "img").mkdir(exist_ok=True)
        (DOCS / "img" / "performance.svg").write_text(chart)
        (DOCS / "performance.json").write_text(json.dumps(document, indent=2, default=str) + "\n")
        replace_block(DOCS / "performance.md", markdown)
        if peers_markdown:
            replace_block(DOCS / "performance.md", peers_markdown, peers_table.START, peers_table.END)


def caption(meta: dict[str, Any]) -> str:
    return (
        f"{meta['date']}, {meta['cpus']} x {meta['cpu']}, PostgreSQL {meta['postgres']}, "
        f"commit {meta['commit'] or '?'}{' (quick run)' if meta['quick'] else ''}"
    )


def notes(meta: dict[str, Any]) -> list[str]:
    """Return the lines printed under the table: peers, load, failures."""
    versions = meta.get("peer_versions")
    if versions:
        measured = ", ".join(
            f"{peers_table.PEERS[peer].label} {version}" for peer, version in versions.items()
        )
        lines = [f"Peers: {measured}, measured in the same run (the peers table)."]
    else:
        lines = ["Peers: not measured in this run (`python -m bench --peers` measures them)."]
    if meta["load_before"] > BUSY_LOAD:
        lines.append(
            f"Load average was {meta['load_before']:.2f} at the start and {meta.get('load_after', 0):.2f} at the end: "
            f"other processes were running, so these numbers are noisy."
        )
    lines += [f"FAILED {error}" for error in meta.get("errors", [])]
    return lines


def results_block(table: list[list[str]], meta: dict[str, Any]) -> str:
    """Return the Markdown that docs/performance.md shows between its result markers."""
    return "\n".join(
        [
            f"Produced by `{meta['command']}` on {meta['date']}, commit `{meta['commit'] or '?'}`"
            f"{' plus uncommitted changes' if meta['uncommitted_changes'] else ''}, in {meta['seconds']:.0f} s.",
            "",
            f"* Machine: {meta['cpus']} x {meta['cpu']}; PostgreSQL {meta['postgres']} (fsync {meta['fsync']}, "
            f"synchronous_commit {meta['synchronous_commit']}, shared_buffers {meta['shared_buffers']}); "
            f"Python {meta['python']}, Django {meta['django']}.",
            *[f"* {line}" for line in notes(meta)],
            "",
            report.markdown_table(table),
            "",
            "![Benchmark results](img/performance.svg)",
        ]
    )


def replace_block(page: Path, markdown: str, start: str = BLOCK_START, end: str = BLOCK_END) -> None:
    """Put ``markdown`` between the markers ``start`` and ``end`` of ``page`` (the results' by default)."""
    text = page.read_text()
    if start not in text or end not in text:
        raise SystemExit(f"{page} has no {start} ... {end} block to fill")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    page.write_text(f"{head}{start}\n{markdown}\n{end}{tail}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run python -m bench")
