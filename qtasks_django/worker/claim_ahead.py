"""Claiming ahead: a busy worker with short tasks claims in batches, not slot by slot.

With ``--concurrency 4`` and tasks that take a millisecond, claiming only for free
slots costs one round trip per four tasks, and the worker spends its time waiting
for claims. When recent tasks were short, the worker claims up to ``size`` more
than it has free slots and starts them as slots free up. Long tasks turn it off,
so a worker never sits on tasks another worker could be running.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..models import TaskRecord

#: Recent tasks shorter than this on average (seconds) switch claiming ahead on.
SHORT = 0.05
#: Weight of the newest duration in the running average.
WEIGHT = 0.2


class ClaimAhead:
    """Tasks this worker claimed before it had a slot for them (they hold leases)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._records: deque[TaskRecord] = deque()
        self._lock = threading.Lock()
        self._average: float | None = None

    def observe(self, seconds: float) -> None:
        """Feed a run's duration (any thread)."""
        average = self._average
        self._average = seconds if average is None else average + WEIGHT * (seconds - average)

    def room(self) -> int:
        """How many more tasks to claim ahead now (0 while tasks are long or unknown)."""
        if self._average is None or self._average >= SHORT:
            return 0
        with self._lock:
            return max(0, self.size - len(self._records))

    def take(self, count: int) -> list[TaskRecord]:
        with self._lock:
            return [self._records.popleft() for _ in range(min(count, len(self._records)))]

    def put(self, records: list[TaskRecord]) -> None:
        with self._lock:
            self._records.extend(records)

    def put_back(self, record: TaskRecord) -> None:
        """Return a record taken but not started; it is the next one taken."""
        with self._lock:
            self._records.appendleft(record)

    def uuids(self) -> list[Any]:
        with self._lock:
            return [record.uuid for record in self._records]

    def take_all(self) -> list[TaskRecord]:
        with self._lock:
            records, self._records = list(self._records), deque()
        return records

    def __len__(self) -> int:
        return len(self._records)
