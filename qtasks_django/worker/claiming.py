"""What the claim loop puts into free slots each round.

Tasks claimed ahead go first; then fresh claims for the slots still free, plus a top-up
of the tasks claimed ahead while tasks are short. A task rescued twice (a *suspect*: it may
be what killed its workers; see ``claims.suspect_after``) runs alone: the worker drains,
claims that one task, and claims nothing else until it ends.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from ..queue.claims import Claims

if TYPE_CHECKING:
    from ..queue.claims import Look
    from .claim_ahead import ClaimAhead
    from .slots import Slots

logger = logging.getLogger("qtasks_django.worker")

#: How often a worker looks at tasks behind concurrency or rate limits when nothing
#: else tells it to (seconds): the longest a limited task waits behind free ones.
GATES_INTERVAL = 0.5


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
        self.next_eta: float | None = None  # monotonic time the next delayed task (or a rate gate) is due
        self.gated: set[Any] = set()  # running tasks this worker claimed through their gates
        self.gates_at = 0.0  # monotonic time to look at the gates again
        self.gates_blocked = False
        self.reopens_at: float | None = None  # monotonic time a closed rate gate opens
        # Set when what ``look`` reads may have changed: a message that is not "ready
        # tasks" (WakeUps), a poll, a due time. Otherwise a short claim reuses the last look.
        self.look_hint = threading.Event()
        self.look_hint.set()
        self._look: Look | None = None

    def fill(self) -> int:
        """Start tasks in the free slots; return how many were started or claimed."""
        if (self.suspects or self.quarantined) and not self.ahead:
            return self._claim_suspect()
        free = max(0, self.concurrency - len(self.slots))
        records = self.ahead.take(free)
        for record in records:  # started before claiming more: a failed claim loses none
            self.slots.start(record)
        missing = free - len(records)
        # Limited tasks first when a gate of ours just freed, or when the worker is busy
        # and it is time to look (free tasks would take every slot otherwise). An idle
        # worker claims free tasks first: a look at the gates costs a query, and a task
        # that was just enqueued should not wait for it.
        looked = bool(missing) and self._gates_due(busy=bool(self.slots)) and self.look().limited
        gated = self._fill_gated(missing) if looked else 0
        missing -= gated
        # Slots go on to tasks claimed ahead by themselves; top those up before they run out.
        room = self.ahead.room() if len(self.ahead) <= self.concurrency else 0
        if not missing and not room:
            return len(records) + gated  # every slot is busy and enough is claimed ahead
        claimed = self.claims.claim(self.worker_id, self.queues, missing + room)
        self.ahead.put(claimed[missing:])
        for record in claimed[:missing]:
            self.slots.start(record)
        short = len(claimed) < missing
        look = None
        if short and not looked and (not self.gates_blocked or time.monotonic() >= self.gates_at):
            # No free task for these slots: limited tasks whose gates are open may take
            # them. One look says whether any is ready before the gated claim is tried:
            # an idle worker woken for a task another worker took pays two statements.
            look = self.look()
            if look.limited:
                gated += self._fill_gated(missing - len(claimed))
            else:
                self.gates_blocked, self.reopens_at = False, None
        if records or claimed or gated:
            return len(records) + len(claimed) + gated
        # Nothing was ready: look for what comes next. (Not after a claim: the queue is
        # busy then, and a task just started must get the GIL first.)
        if look is None:
            look = self.look()
        if not self.slots:
            self.suspects = look.suspects
        due = look.next_eta
        self.next_eta = None if due is None else time.monotonic() + (due - timezone.now()).total_seconds()
        if self.reopens_at is not None:
            self.next_eta = self.reopens_at if self.next_eta is None else min(self.next_eta, self.reopens_at)
        if self.gates_blocked:
            # A closed concurrency gate opens when a task of its key ends, and nothing wakes
            # this worker when that happens on another worker: look again at ``gates_at``,
            # not a poll later. (Its own limited tasks free their slots only once their
            # rows have ended: ``execute``.)
            self.next_eta = self.gates_at if self.next_eta is None else min(self.next_eta, self.gates_at)
        return 0

    def look(self) -> Look:
        """Whether suspects or limited rows wait, and the next delayed task: read again only when hinted.

        A worker woken by "ready tasks" whose claim found none lost them to another
        worker; nothing it would read here changed, so it reads nothing.
        """
        if self._look is None or self.look_hint.is_set():
            self.look_hint.clear()  # before the read: a message arriving during it sets it again
            self._look = self.claims.look(self.queues)
        return self._look

    def _gates_due(self, *, busy: bool) -> bool:
        """Whether to look at the limited tasks before the free ones this round.

        After a task of ours behind a gate ended (its slot is the one its gate frees);
        and, while busy, at a rate gate's reopening and every ``GATES_INTERVAL``. (The
        free claim coming back short is the other time to look: ``fill``.) Never on
        every round of a busy drain: most workers have no limited task at all, and the
        look costs a query.
        """
        if self.gated:
            ended = self.gated - set(self.slots)
            if ended:
                self.gated -= ended
                return True
        return busy and time.monotonic() >= self.gates_at

    def _fill_gated(self, free: int) -> int:
        gate = self.claims.claim_gated(self.worker_id, self.queues, free)
        now = time.monotonic()
        self.gates_blocked = gate.blocked and not gate.records
        if not gate.records and not gate.blocked and self._look is not None:
            self._look = replace(self._look, limited=False)  # none is ready: no gated claim until told
        self.gates_at = now if len(gate.records) == free else now + GATES_INTERVAL
        self.reopens_at = None
        if gate.reopens_at is not None:
            self.reopens_at = now + max(0.0, (gate.reopens_at - timezone.now()).total_seconds())
            self.gates_at = min(self.gates_at, self.reopens_at)
        for record in gate.records:
            self.gated.add(record.pk)
            self.slots.start(record)
        return len(gate.records)

    def look_for_suspects(self) -> None:
        """After a rescue: note whether a rescued task now waits to run alone."""
        self.look_hint.set()  # rescued rows are ready again
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
