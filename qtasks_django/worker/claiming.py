"""What the claim loop puts into free slots each round.

Tasks claimed ahead go first; then fresh claims for the slots still free, plus a top-up
of the tasks claimed ahead while tasks are short. A task rescued twice (a *suspect*: it may
be what killed its workers; see ``claims.suspect_after``) runs alone: the worker drains,
claims that one task, and claims nothing else until it ends.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from django.utils import timezone

from ..queue.claims import Claims

if TYPE_CHECKING:
    from .claim_ahead import ClaimAhead
    from .slots import Slots

logger = logging.getLogger("qtasks_django.worker")


class Claimer:
    """Fill the worker's free slots from the queues it serves."""

    def __init__(
        self,
        *,
        claims: Claims,
        worker_id: str,
        queues: list[str] | None,
        concurrency: int,
        ahead: ClaimAhead,
        slots: Slots,
    ) -> None:
        self.claims = claims
        self.worker_id = worker_id
        self.queues = queues
        self.concurrency = concurrency
        self.ahead = ahead
        self.slots = slots
        self.suspects = False  # a rescued task waits to be run alone
        self.quarantined = False  # one runs now: claim nothing else
        self.next_eta: float | None = None  # monotonic time the next delayed task is due

    def fill(self) -> int:
        """Start tasks in the free slots; return how many were started or claimed."""
        if (self.suspects or self.quarantined) and not self.ahead:
            return self._claim_suspect()
        free = max(0, self.concurrency - len(self.slots))
        records = self.ahead.take(free)
        for record in records:  # started before claiming more: a failed claim loses none
            self.slots.start(record)
        missing = free - len(records)
        # Slots go on to tasks claimed ahead by themselves; top those up before they run out.
        room = self.ahead.room() if len(self.ahead) <= self.concurrency else 0
        if not missing and not room:
            return len(records)  # every slot is busy and enough is claimed ahead
        claimed = self.claims.claim(self.worker_id, self.queues, missing + room)
        self.ahead.put(claimed[missing:])
        for record in claimed[:missing]:
            self.slots.start(record)
        if records or claimed:
            return len(records) + len(claimed)
        # Nothing was ready: look for what comes next. (Not after a claim: the queue is
        # busy then, and a task just started must get the GIL first.)
        if not self.slots:
            self.suspects = self.claims.suspects_waiting(self.queues)
        due = self.claims.next_eta(self.queues)
        self.next_eta = None if due is None else time.monotonic() + (due - timezone.now()).total_seconds()
        return 0

    def look_for_suspects(self) -> None:
        """After a rescue: note whether a rescued task now waits to run alone."""
        self.suspects = self.suspects or self.claims.suspects_waiting(self.queues)

    def _claim_suspect(self) -> int:
        """Run a rescued task alone: wait until nothing else runs, then claim one suspect."""
        if self.slots:
            return 0  # drain first (and while quarantined, claim nothing else)
        self.quarantined = False
        records = self.claims.claim(self.worker_id, self.queues, 1, suspects=True)
        if not records:
            self.suspects = False
            return 0
        self.quarantined = True
        record = records[0]
        logger.info(
            "task=%s uuid=%s was rescued %d times: running it alone",
            record.task_name,
            record.uuid,
            record.rescues,
        )
        self.slots.start(records[0])
        return 1
