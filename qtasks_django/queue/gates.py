"""Gates: claiming tasks that wait behind a concurrency or a rate limit, across all workers.

A limited task's row names its gates: ``concurrency_key`` with ``concurrency_limit`` (at
most that many of the key's tasks run at once) and ``rate_key`` with ``rate_limit`` per
``rate_period`` seconds (at most that many starts in any such window). What the gates
count is the task rows themselves (running rows; rows started in the window), so a dead
worker or a lost message cannot leave a counter wrong.

Counting then claiming is a race unless one claimer at a time does it per key. On
PostgreSQL each claim takes a transaction-scoped advisory lock per gate key, with a
*try*: a key another worker is claiming right now is left for this round (like SKIP
LOCKED), so claimers never wait for each other. The counts are read after the locks, in
new statements, so they see every claim committed before. Elsewhere (SQLite) the claim
starts with a write, which takes the database's write lock: claims are serialized. The
statements themselves are in ``gate_reads``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction

from ..models import TaskRecord
from .gate_reads import GateReads, RateWindow

#: Ready limited rows looked at per pass. The first pass takes them in run order; each
#: later one looks past the keys found closed (``gate_heads``), so a long backlog behind
#: one closed key never hides the keys after it.
CANDIDATES = 64
PASSES = 4


@dataclass
class GateClaim:
    """What a gated claim took, and when a closed rate gate opens again."""

    records: list[TaskRecord] = field(default_factory=list)
    blocked: bool = False
    """Ready limited tasks were left because their gates were closed (or another worker's)."""
    reopens_at: datetime | None = None
    """The soonest time a closed rate gate admits a start again (``None``: none, or a finish opens it)."""


class Gates:
    """Claim ready limited tasks in run order, admitting only what their gates allow now."""

    def __init__(self, using: str = "default") -> None:
        self.using = using

    def claim(self, queues: list[str] | None, limit: int, now: datetime, lease: dict[str, Any]) -> GateClaim:
        result = GateClaim()
        if limit <= 0:
            return result
        reads = GateReads(self.using)
        # Read before the transaction: most looks find no limited task waiting, and end here.
        batch = reads.candidates(queues, now, CANDIDATES)
        if not batch:
            return result
        with transaction.atomic(using=self.using):
            reads.begin()
            state = _GateState(reads, now, limit)
            chosen: list[Any] = []
            for _pass in range(PASSES):
                state.load(batch)
                for row in batch:
                    if state.admit(row):
                        chosen.append(row["uuid"])
                        if len(chosen) >= limit:
                            break
                    else:
                        result.blocked = True
                if len(chosen) >= limit or len(batch) < CANDIDATES:
                    break
                # Every row looked at so far was closed or admitted: look past the closed keys.
                closed = {"concurrency_key": state.closed_c, "rate_key": state.closed_r}
                seen = set(chosen)
                further = reads.beyond(closed, queues, now, per_key=limit, rows=CANDIDATES)
                batch = [row for row in further if row["uuid"] not in seen]
            result.reopens_at = state.reopens_at
            if chosen:
                result.records = reads.lease(chosen, lease)
        return result


class _GateState:
    """The gates met so far in one claim: their locks, counts and what this claim admitted."""

    def __init__(self, reads: GateReads, now: datetime, take: int) -> None:
        self.reads = reads
        self.now = now
        self.take = take
        self.closed_c: set[str] = set()
        self.closed_r: set[str] = set()
        self.running: dict[str, int] = {}
        self.windows: dict[str, RateWindow] = {}
        self.reopens_at: datetime | None = None

    def load(self, batch: list[dict[str, Any]]) -> None:
        """Lock and count the gates of ``batch`` not met before."""
        new_c = sorted({r["concurrency_key"] for r in batch if r["concurrency_key"]} - set(self.running))
        # Tasks sharing a rate key should declare one rate: the first row met sets its window.
        new_r: dict[str, RateWindow] = {}
        for r in batch:
            key = r["rate_key"]
            if key and key not in self.windows and key not in new_r:
                new_r[key] = RateWindow(r["rate_limit"], r["rate_period"], self.take)
        if not new_c and not new_r:
            return
        held = self.reads.lock([f"c:{k}" for k in new_c] + [f"r:{k}" for k in new_r])
        running = self.reads.counts(new_c, new_r, self.now)
        for key in new_c:
            self.running[key] = running.get(key, 0)
            if f"c:{key}" not in held:
                self.closed_c.add(key)  # another worker is claiming this key right now
        for key, window in new_r.items():
            self.windows[key] = window
            if f"r:{key}" not in held:
                self.closed_r.add(key)

    def admit(self, row: dict[str, Any]) -> bool:
        """Whether ``row`` may start now; if so, count it against its gates."""
        ckey, rkey = row["concurrency_key"], row["rate_key"]
        if ckey and (ckey in self.closed_c or self.running[ckey] >= row["concurrency_limit"]):
            self.closed_c.add(ckey)
            return False
        if rkey:
            window = self.windows[rkey]
            if rkey in self.closed_r:
                return False
            if window.count >= window.limit:
                self.closed_r.add(rkey)
                opens = window.reopens_at(self.now)
                self.reopens_at = opens if self.reopens_at is None else min(self.reopens_at, opens)
                return False
            window.count += 1
        if ckey:
            self.running[ckey] += 1
        return True
