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
starts with a write, which takes the database's write lock: claims are serialized.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connections, transaction
from django.db.models import Count

from ..models import PausedQueue, TaskRecord
from ..status import TaskStatus
from .gate_heads import COLUMNS, beyond

#: Ready limited rows looked at per pass. The first pass takes them in run order; each
#: later one looks past the keys found closed (``gate_heads``), so a long backlog behind
#: one closed key never hides the keys after it.
CANDIDATES = 64
PASSES = 4
#: The first number of the two-number advisory lock keys (the second is the key's
#: hash): the locks never collide with an application's one-number locks.
LOCK_SPACE = 0x5174_6B73


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
        manager = TaskRecord.objects.using(self.using)
        ready = manager.ready(queues, now).limited()
        if not ready.exists():  # the usual case: no limited task waits (one index probe)
            return result
        with transaction.atomic(using=self.using):
            self._serialize()
            state = _GateState(self, now)
            chosen: list[Any] = []
            batch = list(ready.values(*COLUMNS)[:CANDIDATES])
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
                batch = [
                    row
                    for row in beyond(
                        ready,
                        closed,
                        using=self.using,
                        queues=queues,
                        now=now,
                        per_key=limit,
                        rows=CANDIDATES,
                    )
                    if row["uuid"] not in seen
                ]
            result.reopens_at = state.reopens_at
            if chosen:
                result.records = self._lease(chosen, lease)
        return result

    def _serialize(self) -> None:
        if connections[self.using].vendor == "postgresql":
            # The key hops' estimates can be far off (a key's rows look like all rows),
            # and JIT-compiling a plan of that cost takes 40 ms for a query of 1.
            with connections[self.using].cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
            return
        # Elsewhere there are no advisory locks: a first write takes the database's write
        # lock until commit, so claims go one at a time. The UPDATE changes no row, but
        # SQLite takes the lock for it all the same. (Raw: Django runs no SQL at all for
        # an UPDATE it knows matches nothing.)
        connection = connections[self.using]
        with connection.cursor() as cursor:
            table = connection.ops.quote_name(PausedQueue._meta.db_table)
            cursor.execute(f"UPDATE {table} SET reason = reason WHERE 1 = 0")

    def try_lock(self, keys: list[str]) -> set[str]:
        """Take the advisory locks of ``keys`` that no other transaction holds; return those."""
        if connections[self.using].vendor != "postgresql":
            return set(keys)
        with connections[self.using].cursor() as cursor:
            cursor.execute(
                "SELECT k FROM unnest(%s::text[], %s::int[]) AS t(k, h) WHERE pg_try_advisory_xact_lock(%s, h)",
                [keys, [_hash(k) for k in keys], LOCK_SPACE],
            )
            return {k for (k,) in cursor.fetchall()}

    def _lease(self, chosen: list[Any], lease: dict[str, Any]) -> list[TaskRecord]:
        manager = TaskRecord.objects.using(self.using)
        # A cancel may have taken a row since it was read: only rows still waiting are leased.
        ids = list(
            manager.filter(pk__in=chosen, status=TaskStatus.NEW)
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)
        )
        manager.filter(pk__in=ids, status=TaskStatus.NEW).update(**lease)
        return list(manager.filter(pk__in=ids, lease_token=lease["lease_token"]))


class _GateState:
    """The gates met so far in one claim: their locks, counts and what this claim admitted."""

    def __init__(self, gates: Gates, now: datetime) -> None:
        self.gates = gates
        self.now = now
        self.manager = TaskRecord.objects.using(gates.using)
        self.closed_c: set[str] = set()
        self.closed_r: set[str] = set()
        self.running: dict[str, int] = {}
        self.starts: dict[str, list[datetime]] = {}  # newest first, within the longest period met
        self.reopens_at: datetime | None = None

    def load(self, batch: list[dict[str, Any]]) -> None:
        """Lock and count the gates of ``batch`` not met before."""
        new_c = sorted({r["concurrency_key"] for r in batch if r["concurrency_key"]} - set(self.running))
        new_r: dict[str, tuple[int, float]] = {}
        for r in batch:
            key = r["rate_key"]
            if key and key not in self.starts:
                count, period = new_r.get(key, (0, 0.0))
                new_r[key] = (max(count, r["rate_limit"]), max(period, r["rate_period"]))
        if not new_c and not new_r:
            return
        held = self.gates.try_lock([f"c:{k}" for k in new_c] + [f"r:{k}" for k in new_r])
        running = dict(
            self.manager.filter(status=TaskStatus.PROCESS, concurrency_key__in=new_c)
            .order_by()
            .values_list("concurrency_key")
            .annotate(n=Count("pk"))
        )
        for key in new_c:
            self.running[key] = running.get(key, 0)
            if f"c:{key}" not in held:
                self.closed_c.add(key)  # another worker is claiming this key right now
        for key, (count, period) in new_r.items():
            self.starts[key] = recent_starts(self.manager, key, self.now - timedelta(seconds=period), count)
            if f"r:{key}" not in held:
                self.closed_r.add(key)

    def admit(self, row: dict[str, Any]) -> bool:
        """Whether ``row`` may start now; if so, count it against its gates."""
        ckey, rkey = row["concurrency_key"], row["rate_key"]
        if ckey and (ckey in self.closed_c or self.running[ckey] >= row["concurrency_limit"]):
            self.closed_c.add(ckey)
            return False
        if rkey:
            if rkey in self.closed_r:
                return False
            window = self.now - timedelta(seconds=row["rate_period"])
            recent = [s for s in self.starts[rkey] if s > window]
            if len(recent) >= row["rate_limit"]:
                self.closed_r.add(rkey)
                opens = recent[row["rate_limit"] - 1] + timedelta(seconds=row["rate_period"])
                self.reopens_at = opens if self.reopens_at is None else min(self.reopens_at, opens)
                return False
            self.starts[rkey].insert(0, self.now)
        if ckey:
            self.running[ckey] += 1
        return True


def _hash(key: str) -> int:
    """A stable signed 32-bit hash of a gate key (the advisory lock's second number)."""
    value = zlib.crc32(key.encode("utf-8", "surrogatepass"))
    return value - 2**32 if value >= 2**31 else value


def recent_starts(manager: Any, key: str, since: datetime, count: int) -> list[datetime]:
    """The newest ``count`` starts of the rate key ``key`` after ``since``, newest first."""
    starts = (
        manager.filter(rate_key=key, started_at__gt=since)
        .order_by("-started_at")
        .values_list("started_at", flat=True)[:count]
    )
    return [start for start in starts if start is not None]  # the filter leaves none; for the types
