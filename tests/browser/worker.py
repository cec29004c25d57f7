"""A real ``qtasks_worker`` subprocess for the browser tier, on the live server's database.

The admin's actions are tested end to end: a task enqueued by the test runs in a worker
process, the browser retries or cancels it, and the worker runs or stops it. The process
is the e2e tier's ``WorkerProcess``, pointed at this test's database. Test modules import
the ``admin_worker`` fixture from here.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from qtasks_django.models import TaskRecord
from tests.e2e.conftest import WorkerProcess, wait_for, worker_database_url


@pytest.fixture
def admin_worker(transactional_db: None, tmp_path: Path) -> Iterator[WorkerProcess]:
    """A running worker (registered, its tasks stored); killed before the database is flushed."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": worker_database_url(),
        "PYTHONUNBUFFERED": "1",
    }
    worker = WorkerProcess(
        ["--concurrency", "2", "--poll-interval", "0.05"],
        env=env,
        log_dir=tmp_path,
        worker_id=f"browser-{uuid.uuid4().hex[:8]}",
    )
    try:
        worker.wait_registered()
        yield worker
    finally:
        worker.kill()


def wait_for_status(task_uuid: object, status: str, *, timeout: float = 30.0) -> TaskRecord:
    """Wait until the task's row has ``status``; return the row."""

    def reached() -> TaskRecord | None:
        return TaskRecord.objects.filter(pk=task_uuid, status=status).first()

    return wait_for(reached, timeout=timeout, what=f"task {task_uuid} to be {status}")
