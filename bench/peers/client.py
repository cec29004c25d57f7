"""The bench's side of a peer: run its driver in the peer's virtualenv and read the JSON it prints.

The bench (Django's virtualenv) never imports a peer: each measure is one
``python -m bench.peers.driver`` subprocess of the peer's interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from bench.peers import venvs
from bench.peers.table import PEERS

ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/8"


def parse_result(stdout: str) -> dict[str, Any]:
    """Return the JSON object of the driver's last line that holds one."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            result: dict[str, Any] = json.loads(line)
            return result
    raise ValueError(f"the driver printed no result: {stdout[-500:]!r}")


def peer_database_url(settings: dict[str, Any], peer: str) -> str:
    """Return the URL of ``peer``'s database: the bench database's name with ``_<peer>`` added."""
    user = settings.get("USER") or "postgres"
    password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
    host = settings.get("HOST") or "127.0.0.1"
    port = settings.get("PORT") or 5432
    return f"postgresql://{user}{password}@{host}:{port}/{settings['NAME']}_{peer}"


def tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class PeerBench:
    """The peers measured in a run: their interpreters, where they connect, their versions."""

    def __init__(self, pythons: dict[str, Path], database_urls: dict[str, str], redis_url: str) -> None:
        self.pythons = pythons
        self.database_urls = database_urls
        self.redis_url = redis_url
        self.versions: dict[str, str] = {}

    @classmethod
    def prepare(cls, peers: list[str], settings: dict[str, Any]) -> PeerBench:
        """Build (when needed) each peer's virtualenv and create its database when missing."""
        from bench.output import ensure_database  # Django's connection: set up by then (run.py)

        python = venvs.find_python312()
        pythons = {peer: venvs.ensure(peer, python) for peer in peers}
        urls = {peer: peer_database_url(settings, peer) for peer in peers}
        for peer in peers:
            if PEERS[peer].uses_postgres:
                ensure_database(f"{settings['NAME']}_{peer}")
        return cls(pythons, urls, os.environ.get("PEERS_REDIS_URL", DEFAULT_REDIS_URL))

    @property
    def names(self) -> list[str]:
        return list(self.pythons)

    def run(self, peer: str, measure: str, *numbers: float, timeout: float = 1800) -> dict[str, Any]:
        """Run one measure in the peer's virtualenv; return its result (raise with its stderr)."""
        env = {
            **os.environ,
            "PEERS_DATABASE_URL": self.database_urls[peer],
            "PEERS_REDIS_URL": self.redis_url,
            "PYTHONPATH": str(ROOT),
        }
        env.pop("DJANGO_SETTINGS_MODULE", None)
        command = [str(self.pythons[peer]), "-m", "bench.peers.driver", peer, measure, *map(str, numbers)]
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{peer} {measure} exited {done.returncode}:\n{tail(done.stderr)}")
        result = parse_result(done.stdout)
        self.versions[peer] = result["version"]
        return result

    def enqueue_rate(self, peer: str, count: int) -> float:
        return float(self.run(peer, "enqueue", count)["rate"])

    def bulk_rate(self, peer: str, count: int, chunk: int) -> float | None:
        rate = self.run(peer, "bulk", count, chunk)["rate"]
        return None if rate is None else float(rate)

    def drain_rate(self, peer: str, count: int, processes: int) -> float:
        return float(self.run(peer, "drain", count, processes)["rate"])

    def latencies_ms(self, peer: str, per_second: float, seconds: float) -> list[float]:
        return [
            float(v) for v in self.run(peer, "latency", float(per_second), float(seconds))["latencies_ms"]
        ]
