"""qtasks_prune on the real database: what goes, what stays, in how many batches."""

from __future__ import annotations

import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from qtasks_django import app
from qtasks_django.models import TaskLog, TaskProgress, TaskRecord
from qtasks_django.queue.pruning import Pruner
from tests.factories import TaskLogFactory, TaskProgressFactory, TaskRecordFactory
from tests.integration.helpers import qtasks_settings

pytestmark = pytest.mark.django_db

OLD = timedelta(days=10)


def finished(status: str = "success", age: timedelta = OLD, **fields) -> TaskRecord:
    """A row that ended ``age`` ago with ``status``."""
    ended = timezone.now() - age
    return TaskRecordFactory(
        status=status, created_at=ended - timedelta(seconds=1), started_at=ended, finished_at=ended, **fields
    )


def prune(*args: str) -> str:
    out = StringIO()
    call_command("qtasks_prune", *args, stdout=out)
    return out.getvalue()


def remaining() -> set[uuid.UUID]:
    return set(TaskRecord.objects.values_list("pk", flat=True))


def test_old_finished_tasks_go_and_everything_else_stays() -> None:
    old = [finished(status) for status in ("success", "error", "cancel", "retry")]
    young = finished("success", age=timedelta(days=1))
    queued = TaskRecordFactory(created_at=timezone.now() - OLD)
    # A running row never goes, whatever its timestamps say.
    running = TaskRecordFactory(running=True, finished_at=timezone.now() - OLD)

    output = prune("--older-than", "7d")

    assert remaining() == {young.pk, queued.pk, running.pk}
    assert "Deleted 4 task(s)" in output
    assert not any(TaskRecord.objects.filter(pk=row.pk).exists() for row in old)


def test_progress_items_and_log_lines_go_with_their_task() -> None:
    task = finished()
    TaskProgressFactory.create_batch(3, task=task)
    TaskLogFactory.create_batch(2, task=task)
    kept = finished(age=timedelta(hours=1))
    TaskProgressFactory(task=kept)

    output = prune("--older-than", "12h")

    assert "Deleted 1 task(s), 3 progress item(s) and 2 log line(s) in 1 batch(es)." in output
    assert list(TaskProgress.objects.values_list("task_id", flat=True)) == [kept.pk]
    assert not TaskLog.objects.exists()


def test_rows_are_deleted_in_batches_of_batch_size() -> None:
    for _ in range(25):
        finished()

    output = prune("--older-than", "1d", "--batch-size", "10")

    assert "Deleted 25 task(s)" in output
    assert "in 3 batch(es)" in output
    assert not TaskRecord.objects.exists()


def test_verbose_run_prints_a_line_per_batch() -> None:
    for _ in range(5):
        finished()

    output = prune("--older-than", "1d", "--batch-size", "2", "-v", "2")

    assert [line.strip() for line in output.splitlines() if line.strip().startswith("batch")] == [
        "batch 1: 2 task(s) so far",
        "batch 2: 4 task(s) so far",
        "batch 3: 5 task(s) so far",
    ]


def test_a_batch_costs_the_same_queries_whatever_its_progress_and_logs() -> None:
    def queries_to_prune(tasks: int, items_each: int) -> int:
        for _ in range(tasks):
            task = finished()
            TaskProgressFactory.create_batch(items_each, task=task)
            TaskLogFactory.create_batch(items_each, task=task)
        with CaptureQueriesContext(connection) as queries:
            result = Pruner.older_than(timedelta(days=1), batch_size=100).run()
        assert result.tasks == tasks and result.batches == 1
        return len(queries)

    assert queries_to_prune(2, 1) == queries_to_prune(40, 5)


def test_dry_run_deletes_nothing_and_counts_what_would_go() -> None:
    for _ in range(3):
        task = finished()
        TaskProgressFactory(task=task)
    finished(age=timedelta(minutes=5))

    output = prune("--older-than", "30m", "--dry-run", "--batch-size", "2")

    assert TaskRecord.objects.count() == 4
    assert TaskProgress.objects.count() == 3
    assert "Would delete 3 task(s), 3 progress item(s) and 0 log line(s) in 2 batch(es)." in output


def test_status_queue_and_task_name_narrow_the_selection() -> None:
    error = finished("error")
    other_queue = finished(queue="emails")
    other_name = finished(task_name="noop")
    target = finished(queue="emails", task_name="noop")

    prune("--older-than", "1d", "--status", "success,cancel", "--queue", "emails", "--task-name", "noop")

    assert remaining() == {error.pk, other_queue.pk, other_name.pk}
    assert target.pk not in remaining()


@pytest.mark.parametrize("statuses", ["new", "success,process", "bogus", ","])
def test_unfinished_or_unknown_statuses_are_refused(statuses: str) -> None:
    finished()

    with pytest.raises(CommandError, match="--status"):
        prune("--older-than", "1d", "--status", statuses)

    assert TaskRecord.objects.count() == 1


@pytest.mark.parametrize("retention", ["soon", "-5", "3y"])
def test_a_bad_retention_is_refused(retention: str) -> None:
    with pytest.raises(CommandError, match="--older-than"):
        prune("--older-than", retention)


def test_a_task_cancelled_while_queued_is_pruned_like_any_finished_task() -> None:
    queued = TaskRecordFactory()
    assert app.cancel(queued.pk, reason="not needed") == "cancel"

    prune("--older-than", "0")

    assert not TaskRecord.objects.filter(pk=queued.pk).exists()


def test_retention_defaults_to_the_prune_after_setting() -> None:
    two_days = finished(age=timedelta(days=2))
    four_days = finished(age=timedelta(days=4))

    with qtasks_settings(PRUNE_AFTER=3 * 24 * 3600):
        prune()

    assert remaining() == {two_days.pk}
    assert four_days.pk not in remaining()


def test_retention_defaults_to_seven_days() -> None:
    six_days = finished(age=timedelta(days=6))
    finished(age=timedelta(days=8))

    prune()

    assert remaining() == {six_days.pk}


class TestRetryChains:
    """A ``retry`` attempt stays while its chain's last attempt is new or in process."""

    def chain(self, *statuses: str, age: timedelta = OLD) -> list[TaskRecord]:
        """Rows linked first to last; every finished one ended ``age`` ago."""
        uuids = [uuid.uuid4() for _ in statuses]
        rows = []
        for index, status in enumerate(statuses):
            fields = {
                "uuid": uuids[index],
                "attempt": index + 1,
                "retry_parent_uuid": uuids[index - 1] if index else None,
                "retry_child_uuid": uuids[index + 1] if index + 1 < len(statuses) else None,
            }
            if status in ("new", "process"):
                rows.append(TaskRecordFactory(status=status, **fields))
            else:
                rows.append(finished(status, age=age, **fields))
        return rows

    def test_attempts_of_a_chain_still_queued_or_running_stay(self) -> None:
        queued = self.chain("retry", "retry", "new")
        running = self.chain("retry", "process")

        output = prune("--older-than", "1d")

        assert remaining() == {row.pk for row in queued + running}
        assert "Deleted 0 task(s)" in output
        assert "Kept 3 retry attempt(s) whose last attempt has not finished." in output

    def test_attempts_of_an_ended_chain_go(self) -> None:
        ended = self.chain("retry", "retry", "success")
        failed = self.chain("retry", "error")

        prune("--older-than", "1d")

        assert not remaining() & {row.pk for row in ended + failed}

    def test_old_attempts_go_when_the_young_last_attempt_has_ended(self) -> None:
        _first, last = self.chain("retry", "success")
        last.finished_at = timezone.now()
        last.save(update_fields=["finished_at"])

        prune("--older-than", "1d")

        assert remaining() == {last.pk}

    def test_an_attempt_whose_successor_is_gone_counts_as_ended(self) -> None:
        _first, second = self.chain("retry", "success")
        second.delete()

        prune("--older-than", "1d")

        assert not remaining()

    def test_kept_attempts_do_not_stop_later_batches(self) -> None:
        kept = self.chain("retry", "retry", "new")
        later = [finished(age=timedelta(days=2)) for _ in range(5)]

        output = prune("--older-than", "1d", "--batch-size", "2")

        assert remaining() == {row.pk for row in kept}
        assert "Deleted 5 task(s)" in output
        assert all(row.pk not in remaining() for row in later)


def test_rate_limited_tasks_stay_while_their_rate_window_counts_them() -> None:
    # "1/30d": a start ten days ago still closes the gate; one of "1/d" does not.
    counted = finished(rate_key="partner:a", rate_limit=1, rate_period=30 * 86400.0)
    finished(rate_key="partner:a", rate_limit=1, rate_period=86400.0)  # pruned

    output = prune("--older-than", "7d")

    assert remaining() == {counted.pk}
    assert "Kept 1 rate-limited task(s) still counted by their rate window." in output
