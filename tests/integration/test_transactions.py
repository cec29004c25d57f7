"""Transactional enqueue: a task exists iff the caller's transaction commits (guarantee 1)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connections, transaction

from qtasks_django import QTasksError, app
from qtasks_django.models import TaskRecord
from tests.tasks import add

pytestmark = pytest.mark.django_db(transaction=True)


class RollbackError(Exception):
    pass


def seen_from_another_connection(uuid: Any) -> bool:
    """Whether a different thread, on its own connection, can read the task row."""
    found: list[bool] = []

    def look() -> None:
        try:
            found.append(TaskRecord.objects.filter(pk=uuid).exists())
        finally:
            connections.close_all()

    thread = threading.Thread(target=look)
    thread.start()
    thread.join(30)
    return found[0]


def test_rolled_back_transaction_leaves_no_task(run_worker) -> None:
    with pytest.raises(RollbackError), transaction.atomic():
        task = add.add_task(1, 2)
        assert TaskRecord.objects.filter(pk=task.uuid).exists()  # visible inside the transaction
        raise RollbackError

    assert TaskRecord.objects.count() == 0
    assert app.get(task.uuid) is None
    assert run_worker().processed == 0  # and no worker ever runs it


def test_committed_transaction_keeps_the_task_and_a_worker_runs_it(run_worker) -> None:
    with transaction.atomic():
        task = add.add_task(1, 2)

    assert TaskRecord.objects.get(pk=task.uuid).status == "new"
    run_worker()
    assert TaskRecord.objects.get(pk=task.uuid).returning == 3


def test_the_row_is_invisible_to_other_connections_until_commit() -> None:
    with transaction.atomic():
        task = add.add_task(1, 2)
        assert not seen_from_another_connection(task.uuid)

    assert seen_from_another_connection(task.uuid)


def test_rolled_back_savepoint_drops_only_its_task() -> None:
    with transaction.atomic():
        kept = add.add_task(1, 1)
        with pytest.raises(RollbackError), transaction.atomic():
            add.add_task(2, 2)
            raise RollbackError

    assert list(TaskRecord.objects.values_list("pk", flat=True)) == [kept.uuid]


def test_waiting_inside_a_transaction_is_refused_and_writes_nothing() -> None:
    with transaction.atomic():
        with pytest.raises(QTasksError, match="inside a transaction"):
            add.add_task(1, 2, timeout=1)
        assert TaskRecord.objects.count() == 0

    assert TaskRecord.objects.count() == 0


def test_waiting_inside_a_transaction_is_refused_for_app_add_task_too() -> None:
    with transaction.atomic(), pytest.raises(QTasksError):
        app.add_task("add", 1, 2, timeout=0)

    assert TaskRecord.objects.count() == 0
