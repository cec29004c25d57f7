"""The wake-up economy: what an "enqueued" message says, whom it wakes, and what that costs.

Every listening worker hears every message. A crowd of idle workers must not pay a
crowd of statements per task: a ready task of a queue a worker does not serve wakes it
not at all, and a worker that loses a ready task to another makes its claim and nothing
else.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from qtasks_django import app
from qtasks_django.notifiers import ENQUEUED, get_notifier, ready_payload, ready_queue
from qtasks_django.queue.claims import Claims
from qtasks_django.worker.claim_ahead import ClaimAhead
from qtasks_django.worker.claiming import Claimer
from qtasks_django.worker.wakeups import WakeUps
from tests.factories import TaskRecordFactory
from tests.tasks import add


def receive(listener, seconds: float, count: int) -> list[tuple[str, str]]:
    got: list[tuple[str, str]] = []
    deadline = time.monotonic() + seconds
    while len(got) < count and time.monotonic() < deadline:
        got += listener.wait(0.1)
    return got


def test_a_ready_payload_names_its_queue_and_nothing_else_does() -> None:
    assert ready_queue(ready_payload("emails")) == "emails"
    assert ready_queue(ready_payload("ready:odd")) == "ready:odd"
    for other in ("emails", "*", ""):
        assert ready_queue(other) is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
class TestPayloads:
    # Through the configured notifier (PostgreSQL's own, or Redis under QTASKS_TEST_NOTIFIER):
    # the payload is the same contract whichever carries it.
    def test_a_task_ready_now_is_announced_ready(self) -> None:
        with get_notifier().listen([ENQUEUED]) as listener:
            add.add_task(1, 2)
            assert receive(listener, 5, 1) == [(ENQUEUED, "ready:default")]

    def test_a_delayed_task_is_announced_by_its_queue_alone(self) -> None:
        with get_notifier().listen([ENQUEUED]) as listener:
            add.add_task(1, 2, countdown=60)
            assert receive(listener, 5, 1) == [(ENQUEUED, "default")]

    def test_a_bulk_enqueue_announces_each_kind_once(self) -> None:
        with get_notifier().listen([ENQUEUED]) as listener:
            with transaction.atomic():
                later = add(5, 6)
                later.countdown = 60
                app.add_tasks([add(1, 2), add(3, 4), later])
            got = receive(listener, 5, 2)
        assert sorted(got) == [(ENQUEUED, "default"), (ENQUEUED, "ready:default")]


class _Listener:
    """Hands WakeUps the messages a test puts in, as a real listener's ``wait`` would."""

    def __init__(self) -> None:
        self.pending: list[tuple[str, str]] = []
        self.closed = threading.Event()
        self.lock = threading.Lock()

    def wait(self, timeout: float) -> list[tuple[str, str]]:
        self.closed.wait(0.01)
        with self.lock:
            got, self.pending = self.pending, []
        return got

    def close(self) -> None:
        self.closed.set()


class _Notifier:
    def __init__(self) -> None:
        self.listener = _Listener()

    def listen(self, channels):
        return self.listener


def _wakeups(queues):
    notifier = _Notifier()
    events = {"wakeup": threading.Event(), "cancel_hint": threading.Event(), "look_hint": threading.Event()}
    wakeups = WakeUps(notifier, **events, queues=queues, poll_interval=0.05)  # type: ignore[arg-type]
    wakeups.start()
    return notifier.listener, events, wakeups


def _hear(listener, events, *messages) -> dict[str, bool]:
    for event in events.values():
        event.clear()
    with listener.lock:
        listener.pending += list(messages)
    time.sleep(0.2)
    return {name: event.is_set() for name, event in events.items()}


class TestWhomAMessageWakes:
    @pytest.mark.parametrize(("queue", "wakes"), [("default", True), ("reports", False)])
    def test_ready_tasks_wake_only_workers_of_their_queue_and_ask_for_no_look(self, queue, wakes) -> None:
        listener, events, wakeups = _wakeups(["default"])
        try:
            heard = _hear(listener, events, (ENQUEUED, ready_payload(queue)))
        finally:
            wakeups.close()
        assert heard == {"wakeup": wakes, "cancel_hint": False, "look_hint": False}

    @pytest.mark.parametrize("payload", ["default", "reports", "*"])
    def test_anything_else_wakes_and_asks_for_a_look(self, payload) -> None:
        # A delayed or limited task, a retry, a rescue ("*"): what the look reads may have changed.
        listener, events, wakeups = _wakeups(["default"])
        try:
            heard = _hear(listener, events, (ENQUEUED, payload))
        finally:
            wakeups.close()
        assert heard == {"wakeup": True, "cancel_hint": False, "look_hint": True}

    def test_a_worker_of_every_queue_is_woken_by_any_ready_task(self) -> None:
        listener, events, wakeups = _wakeups(None)
        try:
            heard = _hear(listener, events, (ENQUEUED, ready_payload("reports")))
        finally:
            wakeups.close()
        assert heard["wakeup"] is True


class _Slots(list):
    def start(self, record) -> None:
        self.append(record)


@pytest.mark.django_db
class TestWhatALostTaskCosts:
    def _claimer(self) -> tuple[Claimer, _Slots]:
        slots = _Slots()
        claimer = Claimer(
            claims=Claims(),
            worker_id="w1",
            queues=None,
            concurrency=2,
            ahead=ClaimAhead(0),
            slots=slots,  # type: ignore[arg-type]
        )
        return claimer, slots

    def test_a_worker_that_lost_a_ready_task_reads_nothing_but_its_claim(self) -> None:
        claimer, _ = self._claimer()
        assert claimer.fill() == 0  # the first round looks
        with CaptureQueriesContext(connection) as lost:
            assert claimer.fill() == 0  # woken by "ready", and another worker took the task
        claimer.look_hint.set()
        with CaptureQueriesContext(connection) as hinted:
            assert claimer.fill() == 0
        # One statement more when hinted: suspects, limited rows and the next due time.
        # (PostgreSQL's claim goes through psycopg's own cursor, which is not counted.)
        assert len(hinted) == len(lost) + 1
        if connection.vendor == "postgresql":
            assert len(lost) == 0

    def test_a_hint_makes_it_look_again_and_see_a_delayed_task(self) -> None:
        claimer, _ = self._claimer()
        claimer.fill()
        TaskRecordFactory(eta=timezone.now() + timedelta(minutes=5))
        claimer.fill()
        assert claimer.next_eta is None  # no hint: the last look holds

        claimer.look_hint.set()
        claimer.fill()
        assert claimer.next_eta is not None
        assert claimer.next_eta - time.monotonic() == pytest.approx(300, abs=5)
