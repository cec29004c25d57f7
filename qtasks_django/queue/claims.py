"""Claims: a worker takes ready rows under a fresh lease, in one short transaction.

Claims use ``FOR UPDATE SKIP LOCKED`` on PostgreSQL and no user code ever runs inside
one. The lease token they set fences every later write of the run (``finishes``).
"""

from __future__ import annotations

import uuid as uuid_lib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connections, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ..conf import settings
from ..models import PausedQueue, TaskRecord
from ..status import TaskStatus
from .gates import GateClaim, Gates
from .planned import fetch_planned
from .returning import records, returning_columns


def suspect_after() -> int:
    """How many rescues make a task a *suspect*, claimed only to run alone.

    A worker that dies takes every task it ran back to the queue, innocent ones with
    the task that killed it. Rescued once, tasks are claimed as usual again, so that
    after a crash N tasks recover together in about one task's time, not N. A task
    rescued twice has been beside two dying workers: it then runs alone, so a task
    that kills every worker reaches ``MAX_RESCUES`` without condemning its neighbours
    (they get their own lone runs and finish). With ``MAX_RESCUES = 1`` there is no
    second chance to spare, and a task runs alone from its first rescue.
    """
    max_rescues: int = settings.MAX_RESCUES
    return max(1, min(2, max_rescues))


@dataclass(frozen=True)
class Look:
    """What ``Claims.look`` found: the idle worker's next steps."""

    suspects: bool
    limited: bool
    next_eta: datetime | None


class Claims:
    """Find and claim ready task rows in the database ``using``."""

    def __init__(self, using: str = "default") -> None:
        self.using = using

    def claim(
        self, worker_id: str, queues: list[str] | None, limit: int, *, suspects: bool = False
    ) -> list[TaskRecord]:
        """Lock up to ``limit`` ready tasks, mark them ``process`` under a fresh lease, return them.

        Tasks rescued ``suspect_after()`` times (their workers died while running them)
        are *suspects*: they may be what killed them. They are claimed only with
        ``suspects=True``, one at a time, by a worker that runs nothing else, so a poison
        task never takes innocent tasks down with it.
        """
        if limit <= 0:
            return []
        if suspects:
            limit = 1
        now = timezone.now()
        lease = self._lease(worker_id, now)
        if connections[self.using].vendor == "postgresql":
            claimed = self._claim_postgres(queues, limit, now, lease, suspects)
        else:
            claimed = self._claim_portable(queues, limit, now, lease, suspects)
        claimed.sort(key=lambda r: (r.priority, r.created_at))
        return claimed

    def claim_gated(self, worker_id: str, queues: list[str] | None, limit: int) -> GateClaim:
        """Claim up to ``limit`` ready tasks behind concurrency or rate limits that their gates admit now."""
        now = timezone.now()
        return Gates(self.using).claim(queues, limit, now, self._lease(worker_id, now))

    @staticmethod
    def _lease(worker_id: str, now: datetime) -> dict[str, Any]:
        return {
            "status": TaskStatus.PROCESS,
            "worker_id": worker_id,
            "lease_token": uuid_lib.uuid4(),
            "lease_expires_at": now + timedelta(seconds=settings.LEASE_TIMEOUT),
            "started_at": now,
            "updated_at": now,
        }

    def suspects_waiting(self, queues: list[str] | None) -> bool:
        """Whether a rescued task is ready and waits for a worker to run it alone."""
        return bool(self._suspects(queues).exists())

    def has_ready(self, queues: list[str] | None) -> bool:
        """Whether any task is ready to run now."""
        return TaskRecord.objects.using(self.using).ready(queues).exists()

    def look(self, queues: list[str] | None) -> Look:
        """What a worker whose claim came back short needs to know next, in one statement.

        Whether a suspect waits to run alone, whether limited rows are ready (only then
        is a gated claim worth its statements), and when the next delayed task is due.
        Every idle worker that a notification wakes makes a claim and, when another
        worker took the task first, this look: two statements each, not five.
        """
        now = timezone.now()
        ready = TaskRecord.objects.using(self.using).ready(queues, now)
        waiting = TaskRecord.objects.using(self.using).filter(status=TaskStatus.NEW, eta__gt=now)
        if queues:
            waiting = waiting.filter(queue__in=queues)
        waiting = waiting.exclude(queue__in=PausedQueue.objects.values("queue"))
        parts = [
            self._suspects(queues, now).values("pk")[:1],
            ready.limited().values("pk")[:1],
            waiting.order_by("eta").values("eta")[:1],
        ]
        compiled = [part.query.sql_with_params() for part in parts]
        sql = "SELECT EXISTS({}), EXISTS({}), ({})".format(*(text for text, _ in compiled))
        with connections[self.using].cursor() as cursor:
            cursor.execute(sql, [param for _, params in compiled for param in params])
            suspects, limited, next_eta = cursor.fetchone()
        if isinstance(next_eta, str):  # SQLite hands a subquery's datetime back as text, in UTC
            next_eta = parse_datetime(next_eta)
        if next_eta is not None and timezone.is_naive(next_eta):
            next_eta = timezone.make_aware(next_eta, UTC)
        return Look(suspects=bool(suspects), limited=bool(limited), next_eta=next_eta)

    def _suspects(self, queues: list[str] | None, now: datetime | None = None) -> Any:
        # Limited tasks go through their gates, never alone.
        ready = TaskRecord.objects.using(self.using).ready(queues, now).unlimited()
        return ready.filter(rescues__gte=suspect_after())

    def _claim_postgres(
        self, queues: list[str] | None, limit: int, now: datetime, lease: dict[str, Any], suspects: bool
    ) -> list[TaskRecord]:
        # One statement, one round trip: the sub-select locks the rows it picks and
        # skips rows other workers hold; the UPDATE commits with it. The text is
        # constant, so it is prepared once per connection and bound server-side: no
        # planning and no client-side quoting on the worker's hottest path.
        connection = connections[self.using]
        quote = connection.ops.quote_name
        table = quote(TaskRecord._meta.db_table)
        queue_filter = "AND queue = ANY(%s)" if queues else ""
        paused = quote(PausedQueue._meta.db_table)
        # Only rows with no concurrency or rate limit (the gates claim the others, see
        # ``gates``), in queues that are not paused: the predicate of the free index.
        sql = (
            f"UPDATE {table} SET status = %s, worker_id = %s, lease_token = %s, lease_expires_at = %s, "
            f"started_at = %s, updated_at = %s WHERE uuid IN ("
            f"SELECT uuid FROM {table} AS t WHERE status = 'new' AND concurrency_key IS NULL AND rate_key IS NULL "
            f"AND eta <= %s {queue_filter} AND NOT EXISTS (SELECT FROM {paused} AS p WHERE p.queue = t.queue) "
            f"AND rescues {'>=' if suspects else '<'} %s "
            f"ORDER BY priority, created_at LIMIT %s FOR UPDATE SKIP LOCKED) "
            f"RETURNING {returning_columns(connection)}"
        )
        params = [*lease.values(), now, *([list(queues)] if queues else []), suspect_after(), limit]
        # Right after a burst of enqueues the table's statistics still say "almost no
        # ready rows", and the planner then fetches every ready row and sorts them on
        # each claim. Without sorts the only plan left walks the small ready index in
        # run order and stops at the limit (``planned``: for this claim only).
        rows = fetch_planned(connection, sql, params, {"enable_sort": "off"})
        return records(connection, self.using, rows)

    def _claim_portable(
        self, queues: list[str] | None, limit: int, now: datetime, lease: dict[str, Any], suspects: bool
    ) -> list[TaskRecord]:
        manager = TaskRecord.objects.using(self.using)
        with transaction.atomic(using=self.using):
            ready = manager.ready(queues, now).unlimited().select_for_update(skip_locked=True)
            threshold = suspect_after()
            ready = ready.filter(rescues__gte=threshold) if suspects else ready.filter(rescues__lt=threshold)
            ids = list(ready.values_list("pk", flat=True)[:limit])
            if not ids:
                return []
            # ``status=new`` again: SQLite has no row locks, so this is what stops
            # two workers from taking the same row there.
            manager.filter(pk__in=ids, status=TaskStatus.NEW).update(**lease)
            return list(manager.filter(pk__in=ids, lease_token=lease["lease_token"]))
