"""Waiting for results: ``add_task(timeout=...)``, ``Task.wait_result``, ``SyncResult``/``AsyncResult``."""

from __future__ import annotations

import logging
import uuid

import pytest

from qtasks_django import AsyncResult, SyncResult, Task, app
from qtasks_django.models import TaskRecord
from tests.tasks import add, arouted, async_shared, gen_list, risky, sleeper

pytestmark = pytest.mark.django_db(transaction=True)


def test_add_task_with_timeout_returns_the_finished_task(background_worker) -> None:
    background_worker()

    task = add.add_task(2, 3, timeout=10)

    assert isinstance(task, Task)
    assert (task.status, task.returning, task.task_name) == ("success", 5, "add")
    assert task.finished_at is not None


def test_app_add_task_with_timeout(background_worker) -> None:
    background_worker()

    task = app.add_task("gen_list", 2, timeout=10)

    assert (task.status, task.returning, task.progress) == ("success", ["H(0)", "H(1)"], ["H(0)", "H(1)"])


async def test_async_task_add_task_with_timeout(background_worker) -> None:
    background_worker()

    shared = await async_shared.add_task(timeout=10)
    routed = await arouted.add_task(4, timeout=10)

    assert (shared.status, shared.returning) == ("success", "async shared task")
    assert (routed.status, routed.returning) == ("success", 12)


async def test_app_aadd_task_with_timeout(background_worker) -> None:
    background_worker()

    task = await app.aadd_task("add", 20, 22, timeout=10)

    assert task.returning == 42


def test_waiting_follows_retries_to_the_final_outcome(background_worker) -> None:
    background_worker()

    task = risky.add_task(timeout=20)

    assert (task.status, task.attempt) == ("error", 6)


def test_timeout_without_a_worker_returns_none_and_warns(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="qtasks_django"):
        assert add.add_task(1, 2, timeout=0.2) is None

    assert "timed out after 0.2 seconds" in caplog.text
    assert TaskRecord.objects.get().status == "new"  # still queued: nothing is lost


def test_timeout_zero_checks_once(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="qtasks_django"):
        assert add.add_task(1, 2, timeout=0) is None

    assert TaskRecord.objects.count() == 1


def test_wait_result_on_a_snapshot(background_worker) -> None:
    task = add.add_task(1, 1)
    background_worker()

    final = task.wait_result(10)

    assert (final.uuid, final.status, final.returning) == (task.uuid, "success", 2)


async def test_await_result_on_a_snapshot(background_worker) -> None:
    task = await app.aadd_task("add", 3, 3)
    background_worker()

    final = await task.await_result(10)
    again = await task.wait_result_async(10)  # upstream's name

    assert final.returning == again.returning == 6


def test_sync_result_of_a_task_enqueued_earlier(background_worker) -> None:
    task = sleeper.add_task(0.1)
    background_worker()

    final = SyncResult(task.uuid).result(10)

    assert (final.status, final.returning) == ("success", 0.1)
    assert SyncResult(str(task.uuid)).result(10).uuid == task.uuid  # a string uuid works too


async def test_async_result_of_a_task_enqueued_earlier(background_worker) -> None:
    task = await app.aadd_task("add", 5, 6)
    background_worker()

    final = await AsyncResult(task.uuid).result(10)

    assert (final.status, final.returning) == ("success", 11)


def test_result_of_a_finished_task_returns_at_once() -> None:
    record = TaskRecord.objects.create(task_name="add", args=[1, 2], status="success", returning=3)

    assert SyncResult(record.uuid).result(0).returning == 3


def test_result_includes_progress_items(background_worker) -> None:
    task = gen_list.add_task(3)
    background_worker()

    assert SyncResult(task.uuid).result(10).progress == ["H(0)", "H(1)", "H(2)"]


def test_result_of_an_unknown_task_is_none_with_a_warning(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="qtasks_django"):
        assert SyncResult(uuid.uuid4()).result(1) is None
        assert SyncResult("garbage").result(1) is None

    assert "does not exist" in caplog.text


async def test_async_result_timeout_returns_none() -> None:
    task = await app.aadd_task("add", 1, 2)

    assert await AsyncResult(task.uuid).result(0.2) is None
