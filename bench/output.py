"""Where a run's results go: the terminal, JSON, Markdown, the SVG chart and the docs page."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import plot, report
from bench.report import Measure, Target

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BLOCK_START = "<!-- bench:results:start -->"
BLOCK_END = "<!-- bench:results:end -->"
PEERS = {"Celery": "celery", "django-q2": "django_q", "Procrastinate": "procrastinate"}
BUSY_LOAD = 0.5
"""A load average above this at the start means something else was running."""


def ensure_database() -> None:
    """Create the benchmark's database when it does not exist yet."""
    import psycopg
    from django.db import connection
    from psycopg import sql

    params = dict(connection.get_connection_params())
    params.pop("cursor_factory", None)
    params.pop("context", None)
    name = params.pop("dbname")
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
        "peers": {
            peer: "installed" if importlib.util.find_spec(module) else "not installed"
            for peer, module in PEERS.items()
        },
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
    table = report.rows(measures, targets)
    print(report.text_table(table))
    print("\n".join(notes(meta)))
    document = report.to_json(measures, targets, meta)
    chart = plot.svg(plot.panels(measures, targets), caption=caption(meta))
    markdown = results_block(table, meta)
    if options.json:
        options.json.write_text(json.dumps(document, indent=2, default=str) + "\n")
    if options.markdown == "-":
        print(markdown)
    elif options.markdown:
        Path(options.markdown).write_text(markdown + "\n")
    if options.svg:
        options.svg.write_text(chart)
    if options.docs:
        (DOCS / "img").mkdir(exist_ok=True)
        (DOCS / "img" / "performance.svg").write_text(chart)
        (DOCS / "performance.json").write_text(json.dumps(document, indent=2, default=str) + "\n")
        replace_block(DOCS / "performance.md", markdown)


def caption(meta: dict[str, Any]) -> str:
    return (
        f"{meta['date']}, {meta['cpus']} x {meta['cpu']}, PostgreSQL {meta['postgres']}, "
        f"commit {meta['commit'] or '?'}{' (quick run)' if meta['quick'] else ''}"
    )


def notes(meta: dict[str, Any]) -> list[str]:
    """Return the lines printed under the table: peers, load, failures."""
    lines = [
        f"Peers: {', '.join(f'{peer} {state}' for peer, state in meta['peers'].items())} "
        f"(installed peers are not benchmarked yet: not measured)."
    ]
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


def replace_block(page: Path, markdown: str) -> None:
    """Put ``markdown`` between the result markers of ``page``."""
    text = page.read_text()
    if BLOCK_START not in text or BLOCK_END not in text:
        raise SystemExit(f"{page} has no {BLOCK_START} ... {BLOCK_END} block to fill")
    head, rest = text.split(BLOCK_START, 1)
    _, tail = rest.split(BLOCK_END, 1)
    page.write_text(f"{head}{BLOCK_START}\n{markdown}\n{BLOCK_END}{tail}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run python -m bench")
