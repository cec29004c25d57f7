"""Notifiers: wake-ups are sent after commit only, and losing Redis loses nothing."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from urllib.parse import urlsplit

import pytest
from django.db import connection, transaction

from qtasks_django import app
from qtasks_django.models import TaskRecord
from qtasks_django.notifiers import ENQUEUED, FINISHED, get_notifier
from qtasks_django.notifiers.base import PollingNotifier
from qtasks_django.notifiers.postgres import PostgresNotifier
from qtasks_django.notifiers.redis import RedisNotifier
from qtasks_django.queue.claims import Claims
from qtasks_django.queue.finishes import Finishes
from qtasks_django.queue.leases import Leases
from tests.factories import TaskRecordFactory
from tests.integration.helpers import qtasks_settings
from tests.tasks import add
from tests.tasks_integration import it_emails

pytestmark = pytest.mark.django_db(transaction=True)

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


class RollbackError(Exception):
    pass


def unique_channel() -> str:
    return f"it_{uuid.uuid4().hex[:12]}"


def receive(listener, seconds: float, count: int | None = None) -> list[tuple[str, str]]:
    """Everything the listener hands out within ``seconds`` (stopping early once ``count`` arrived).

    ``wait`` may return early with nothing (e.g. on a subscription confirmation), so it is
    called until the time is up.
    """
    received: list[tuple[str, str]] = []
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        received += listener.wait(remaining)
        if count is not None and len(received) >= count:
            break
    return received


def test_the_default_notifier_follows_the_database_vendor() -> None:
    notifier = get_notifier()

    if os.environ.get("QTASKS_TEST_NOTIFIER") == "redis":
        assert isinstance(notifier, RedisNotifier)
    elif connection.vendor == "postgresql":
        assert isinstance(notifier, PostgresNotifier) and notifier.supports_listen
    else:
        assert isinstance(notifier, PollingNotifier) and not notifier.supports_listen


def test_a_polling_listener_returns_nothing_after_its_timeout() -> None:
    with PollingNotifier().listen([unique_channel()]) as listener:
        assert listener.wait(0.05) == []


# -- PostgreSQL LISTEN/NOTIFY ---------------------------------------------------------------


@pytest.mark.postgres
class TestPostgresNotifier:
    @pytest.fixture(autouse=True)
    def _postgres_is_the_notifier(self):
        # The vendor default, whatever QTASKS_TEST_NOTIFIER chose for the run.
        with qtasks_settings(NOTIFIER=None):
            yield

    def test_a_committed_send_is_received(self) -> None:
        channel = unique_channel()
        notifier = PostgresNotifier()
        with notifier.listen([channel]) as listener:
            with transaction.atomic():
                notifier.send(channel, "hello")

            assert receive(listener, 5, 1) == [(channel, "hello")]

    def test_a_send_is_held_until_commit(self) -> None:
        channel = unique_channel()
        notifier = PostgresNotifier()
        with notifier.listen([channel]) as listener:
            with transaction.atomic():
                notifier.send(channel, "later")
                assert receive(listener, 0.2) == []

            assert receive(listener, 5, 1) == [(channel, "later")]

    def test_a_rolled_back_send_is_never_received(self) -> None:
        channel = unique_channel()
        notifier = PostgresNotifier()
        with notifier.listen([channel]) as listener:
            with pytest.raises(RollbackError), transaction.atomic():
                notifier.send(channel, "lost")
                raise RollbackError
            with transaction.atomic():
                notifier.send(channel, "kept")

            assert receive(listener, 5, 1) == [(channel, "kept")]  # "lost" never arrives, not even later

    def test_outside_a_transaction_send_is_delivered_at_once(self) -> None:
        channel = unique_channel()
        notifier = PostgresNotifier()
        with notifier.listen([channel]) as listener:
            notifier.send(channel, "now")

            assert receive(listener, 5, 1) == [(channel, "now")]

    def test_only_subscribed_channels_are_received(self) -> None:
        mine, other = unique_channel(), unique_channel()
        notifier = PostgresNotifier()
        with notifier.listen([mine]) as listener:
            notifier.send(other, "not for me")
            notifier.send(mine, "for me")

            assert receive(listener, 5, 1) == [(mine, "for me")]

    def test_a_closed_listener_returns_nothing(self) -> None:
        channel = unique_channel()
        notifier = PostgresNotifier()
        listener = notifier.listen([channel])
        listener.close()
        notifier.send(channel, "x")

        assert listener.wait(0.1) == []

    def test_enqueue_wakes_workers_only_after_commit(self) -> None:
        notifier = PostgresNotifier()
        with notifier.listen([ENQUEUED]) as listener:
            with transaction.atomic():
                add.add_task(1, 2)
                assert receive(listener, 0.2) == []

            assert (ENQUEUED, "ready:default") in receive(listener, 5, 1)

    def test_a_rolled_back_enqueue_wakes_nobody(self) -> None:
        notifier = PostgresNotifier()
        with notifier.listen([ENQUEUED]) as listener:
            with pytest.raises(RollbackError), transaction.atomic():
                add.add_task(1, 2)
                raise RollbackError

            assert receive(listener, 0.3) == []

    def test_finish_notifies_waiters_with_the_task_uuid(self) -> None:
        TaskRecordFactory()
        record = Claims().claim("w1", None, 1)[0]
        with PostgresNotifier().listen([FINISHED]) as listener:
            Finishes().finish(record, status="success", returning=3)

            assert receive(listener, 5, 1) == [(FINISHED, str(record.pk))]

    def test_a_fenced_out_finish_notifies_nobody(self) -> None:
        TaskRecordFactory()
        record = Claims().claim("w1", None, 1)[0]
        Leases().release("w1", [record.pk])
        with PostgresNotifier().listen([FINISHED]) as listener:
            assert Finishes().finish(record, status="success") is False

            assert receive(listener, 0.3) == []


# -- Redis pub/sub ------------------------------------------------------------------------------


@pytest.fixture
def redis_notifier() -> RedisNotifier:
    # A fresh prefix per test: other suites may publish on the same Redis database.
    return RedisNotifier(options={"url": os.environ.get("REDIS_URL", ""), "prefix": f"{unique_channel()}:"})


@pytest.mark.redis
class TestRedisNotifier:
    def test_a_published_send_is_received(self, redis_notifier) -> None:
        with redis_notifier.listen(["chan"]) as listener:
            redis_notifier.send("chan", "hello")

            assert receive(listener, 5, 1) == [("chan", "hello")]

    def test_several_messages_arrive_together(self, redis_notifier) -> None:
        with redis_notifier.listen(["a", "b"]) as listener:
            redis_notifier.send("a", "1")
            redis_notifier.send("b", "2")

            assert receive(listener, 5, 2) == [("a", "1"), ("b", "2")]

    def test_send_on_commit_waits_for_the_commit(self, redis_notifier) -> None:
        with redis_notifier.listen(["chan"]) as listener:
            with transaction.atomic():
                redis_notifier.send_on_commit("chan", "later")
                assert receive(listener, 0.2) == []

            assert receive(listener, 5, 1) == [("chan", "later")]

    def test_send_on_commit_of_a_rolled_back_transaction_is_dropped(self, redis_notifier) -> None:
        with redis_notifier.listen(["chan"]) as listener:
            with pytest.raises(RollbackError), transaction.atomic():
                redis_notifier.send_on_commit("chan", "lost")
                raise RollbackError

            assert receive(listener, 0.3) == []

    def test_enqueue_and_finish_publish_through_the_configured_notifier(self, redis_notifier) -> None:
        options = redis_notifier.options
        with qtasks_settings(
            NOTIFIER={"BACKEND": "qtasks_django.notifiers.redis.RedisNotifier", "OPTIONS": options}
        ):
            with redis_notifier.listen([ENQUEUED, FINISHED]) as listener:
                with transaction.atomic():
                    task = add.add_task(1, 2)
                    assert receive(listener, 0.2) == []
                assert receive(listener, 5, 1) == [(ENQUEUED, "ready:default")]

                record = Claims().claim("w1", None, 1)[0]
                Finishes().finish(record, status="success", returning=3)
                assert receive(listener, 5, 1) == [(FINISHED, str(task.uuid))]

    @pytest.mark.parametrize("how", ["add_task", "add_tasks"])
    def test_enqueue_with_redis_publishes_after_commit_and_sends_no_postgres_notify(
        self, redis_notifier, how
    ) -> None:
        # On PostgreSQL the rows are still written by the prepared INSERT or by COPY,
        # without the pg_notify that only PostgreSQL's own notifier wants.
        options = redis_notifier.options
        enqueue = {
            "add_task": lambda: [it_emails.add_task("a@example.com")],
            "add_tasks": lambda: app.add_tasks([it_emails("a@example.com"), add(1, 2), add(3, 4)]),
        }[how]
        with qtasks_settings(
            NOTIFIER={"BACKEND": "qtasks_django.notifiers.redis.RedisNotifier", "OPTIONS": options}
        ):
            with redis_notifier.listen([ENQUEUED]) as heard, PostgresNotifier().listen([ENQUEUED]) as pg:
                with pytest.raises(RollbackError), transaction.atomic():
                    enqueue()
                    raise RollbackError
                assert receive(heard, 0.3) == []
                assert not TaskRecord.objects.exists()

                with transaction.atomic():
                    tasks = enqueue()
                    assert receive(heard, 0.2) == []
                queues = {task.queue for task in tasks}
                expected = sorted((ENQUEUED, f"ready:{q}") for q in queues)
                assert sorted(receive(heard, 5, len(queues))) == expected
                assert receive(pg, 0.3) == []
        assert set(TaskRecord.objects.values_list("pk", flat=True)) == {task.uuid for task in tasks}

    def test_waiting_with_redis_notifications(self, redis_notifier, background_worker) -> None:
        options = redis_notifier.options
        with qtasks_settings(
            NOTIFIER={"BACKEND": "qtasks_django.notifiers.redis.RedisNotifier", "OPTIONS": options}
        ):
            background_worker()

            assert add.add_task(2, 3, timeout=10).returning == 5


# -- Redis gone: nothing is lost -------------------------------------------------------------


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (one per test: an outage is logged once per address)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LoopbackForwarder:
    """Listen on 127.0.0.1:``port`` and pipe each connection to the test Redis: Redis comes back there."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.server = socket.create_server(("127.0.0.1", port))
        self.target = target
        self.connections: list[socket.socket] = []
        self.accepting = threading.Thread(target=self._accept, name="forwarder", daemon=True)
        self.accepting.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:  # closed
                return
            upstream = socket.create_connection(self.target)
            self.connections += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                sock.close()

    def close(self) -> None:
        # shutdown() wakes the accept() that close() alone leaves blocked.
        for sock in (self.server, *self.connections):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:  # already closed by its pipe
                pass
        self.server.close()
        self.accepting.join(5)


def test_send_to_an_unreachable_redis_does_not_raise(caplog) -> None:
    notifier = RedisNotifier(options={"url": f"redis://127.0.0.1:{closed_port()}/0"})

    with caplog.at_level(logging.WARNING, logger="qtasks_django"):
        notifier.send(ENQUEUED, "default")

    assert "could not publish to Redis" in caplog.text


@pytest.mark.redis
def test_a_redis_outage_is_logged_once_when_it_starts_and_once_when_it_ends(caplog) -> None:
    real = urlsplit(os.environ["REDIS_URL"])
    port = closed_port()
    url = f"redis://127.0.0.1:{port}{real.path}"
    prefix = f"{unique_channel()}:"
    down = RedisNotifier(options={"url": url, "prefix": prefix})

    with caplog.at_level(logging.INFO, logger="qtasks_django"):
        for n in range(200):  # a worker finishing tasks while Redis is away
            down.send(FINISHED, str(n))
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1, warnings
        assert f"could not publish to Redis at {url}" in warnings[0] and "workers will poll" in warnings[0]

        forwarder = LoopbackForwarder(port, (real.hostname or "127.0.0.1", real.port or 6379))
        try:
            real_notifier = RedisNotifier(options={"url": os.environ["REDIS_URL"], "prefix": prefix})
            with real_notifier.listen([FINISHED]) as listener:
                RedisNotifier(options={"url": url, "prefix": prefix}).send(FINISHED, "back")
                down.send(FINISHED, "again")

                assert receive(listener, 5, 2) == [(FINISHED, "back"), (FINISHED, "again")]
        finally:
            forwarder.close()

    back = [r for r in caplog.records if "reachable again" in r.getMessage()]
    assert len(back) == 1 and back[0].levelno == logging.INFO
    assert f"Redis at {url} reachable again after" in back[0].getMessage()
    assert "200 message(s) were not published" in back[0].getMessage()
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1


def test_listening_on_an_unreachable_redis_returns_nothing() -> None:
    with RedisNotifier(options={"url": UNREACHABLE_REDIS}).listen([ENQUEUED]) as listener:
        assert listener.wait(0.2) == []
        assert listener.wait(0.1) == []  # and again: it keeps trying, never raises


def test_enqueue_and_run_work_with_redis_unreachable(run_worker) -> None:
    unreachable = {
        "BACKEND": "qtasks_django.notifiers.redis.RedisNotifier",
        "OPTIONS": {"url": UNREACHABLE_REDIS},
    }
    with qtasks_settings(NOTIFIER=unreachable):
        with transaction.atomic():
            task = add.add_task(1, 2)
        run_worker()  # no wake-up ever arrives: the worker finds the task by polling

    assert TaskRecord.objects.get(pk=task.uuid).returning == 3


def test_waiting_works_with_redis_unreachable(background_worker) -> None:
    unreachable = {
        "BACKEND": "qtasks_django.notifiers.redis.RedisNotifier",
        "OPTIONS": {"url": UNREACHABLE_REDIS},
    }
    with qtasks_settings(NOTIFIER=unreachable):
        background_worker()

        task = add.add_task(2, 3, timeout=10)

    assert (task.status, task.returning) == ("success", 5)
