"""Schedules on the real database: sync from code and settings, firing exactly once, missed runs.

Each test runs on PostgreSQL and on SQLite; the worker tests run a real ``Worker`` in a
thread. Subprocess workers (several at once, killed and restarted) are the e2e tier's
(tests/e2e/test_schedules.py).
"""

from __future__ import annotations

import itertools
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from qtasks_django import app
from qtasks_django.models import MissedRuns, Schedule, ScheduleOrigin, TaskRecord
from qtasks_django.queue.operations import retry_task
from qtasks_django.queue.schedules import Firing, ScheduleStore
from qtasks_django.schedules.scheduler import Scheduler
from qtasks_django.status import TaskStatus
from qtasks_django.tasks.app import QueueTasks
from tests.integration.helpers import qtasks_settings

pytestmark = pytest.mark.django_db(transaction=True)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
REPORT = {"task": "scheduled_report", "interval": 600, "kwargs": {"days": 30}, "queue": "maintenance"}


def make_schedule(**fields) -> Schedule:
    values = {
        "name": "every-ten-minutes",
        "task_name": "scheduled_tick",
        "interval": timedelta(minutes=10),
        "timezone": "UTC",
        "next_fire_at": NOW,
        "origin": ScheduleOrigin.ADMIN,
        **fields,
    }
    return Schedule.objects.create(**values)


def fired(schedule: Schedule) -> list[TaskRecord]:
    return list(TaskRecord.objects.filter(schedule=schedule).order_by("scheduled_for"))


# -- sync from code and settings ------------------------------------------------------------------


def test_settings_schedules_are_created_once_and_updated_in_place() -> None:
    with qtasks_settings(SCHEDULES={"cleanup": {**REPORT, "timezone": "Europe/Berlin"}}):
        first = Scheduler(app).sync()
        again = Scheduler(app).sync()
    row = Schedule.objects.get(name="cleanup")
    assert (first.created, again.created, again.updated) == (1, 0, 0)
    assert row.origin == ScheduleOrigin.SETTINGS
    assert (row.task_name, row.interval, row.kwargs, row.queue) == (
        "scheduled_report",
        timedelta(minutes=10),
        {"days": 30},
        "maintenance",
    )
    assert row.timezone == "Europe/Berlin"
    assert timezone.now() < row.next_fire_at <= timezone.now() + timedelta(minutes=10)

    with qtasks_settings(SCHEDULES={"cleanup": {**REPORT, "interval": None, "cron": "0 3 * * *"}}):
        changed = Scheduler(app).sync()
    row.refresh_from_db()
    assert changed.updated == 1
    assert Schedule.objects.filter(name="cleanup").count() == 1
    assert (row.cron, row.interval) == ("0 3 * * *", None)
    assert row.next_fire_at.astimezone(UTC).time().hour == 3  # the test settings' zone is UTC


def test_a_schedule_gone_from_settings_is_disabled_not_deleted_and_comes_back_when_declared_again() -> None:
    with qtasks_settings(SCHEDULES={"cleanup": REPORT}):
        Scheduler(app).sync()
    with qtasks_settings(SCHEDULES={}):
        gone = Scheduler(app).sync()
    row = Schedule.objects.get(name="cleanup")
    assert gone.removed == 1
    assert not row.enabled and row.removed_at is not None

    with qtasks_settings(SCHEDULES={"cleanup": REPORT}):
        Scheduler(app).sync()
    row.refresh_from_db()
    assert row.enabled and row.removed_at is None
    assert row.next_fire_at > timezone.now()


def test_a_paused_declared_schedule_stays_paused_and_admin_schedules_are_never_touched() -> None:
    admin_made = make_schedule(name="admin-made")
    with qtasks_settings(SCHEDULES={"cleanup": REPORT}):
        Scheduler(app).sync()
        Schedule.objects.filter(name="cleanup").update(enabled=False)
        Scheduler(app).sync()
    assert not Schedule.objects.get(name="cleanup").enabled
    admin_made.refresh_from_db()
    assert admin_made.enabled and admin_made.removed_at is None and admin_made.next_fire_at == NOW


def test_a_declared_name_taken_by_an_admin_schedule_leaves_the_admin_one_alone() -> None:
    make_schedule(name="cleanup", task_name="scheduled_tick")
    with qtasks_settings(SCHEDULES={"cleanup": REPORT}):
        Scheduler(app).sync()
    row = Schedule.objects.get(name="cleanup")
    assert (row.origin, row.task_name) == (ScheduleOrigin.ADMIN, "scheduled_tick")


def test_decorator_schedules_are_synced_with_the_task_name_as_their_name() -> None:
    local = QueueTasks("schedules-test")

    @local.task(name="schedules_test_nightly", schedule="@daily")
    def nightly():
        return None

    @local.task(name="schedules_test_often", schedule=timedelta(seconds=90))
    def often():
        return None

    Scheduler(local).sync()
    rows = {row.name: row for row in Schedule.objects.filter(origin=ScheduleOrigin.CODE)}
    assert set(rows) == {"schedules_test_nightly", "schedules_test_often"}
    assert rows["schedules_test_nightly"].cron == "@daily"
    assert rows["schedules_test_often"].interval == timedelta(seconds=90)


def test_a_bad_settings_schedule_is_left_out_and_the_good_ones_are_synced(caplog) -> None:
    bad = {"task": "scheduled_report", "cron": "0 3 * * *", "kwargs": {"weeks": 2}}
    with qtasks_settings(SCHEDULES={"bad": bad, "good": REPORT}):
        Scheduler(app).sync()
    assert list(Schedule.objects.values_list("name", flat=True)) == ["good"]
    assert "Schedule 'bad'" in caplog.text and "missing a required argument: 'days'" in caplog.text


# -- firing -------------------------------------------------------------------------------------------


def test_a_due_schedule_fires_one_task_for_its_firing_and_moves_on() -> None:
    schedule = make_schedule(
        task_name="scheduled_report", kwargs={"days": 7}, queue="maintenance", priority=-3, next_fire_at=NOW
    )

    upcoming = Scheduler(app).fire_due(NOW + timedelta(seconds=2))

    [task] = fired(schedule)
    schedule.refresh_from_db()
    assert (task.task_name, task.kwargs, task.queue, task.priority) == (
        "scheduled_report",
        {"days": 7},
        "maintenance",
        -3,
    )
    assert task.scheduled_for == NOW and task.status == TaskStatus.NEW
    assert schedule.next_fire_at == NOW + timedelta(minutes=10) == upcoming
    assert schedule.last_fired_at == NOW and schedule.last_task_uuid == task.uuid


def test_a_schedule_not_yet_due_fires_nothing() -> None:
    schedule = make_schedule(next_fire_at=NOW)
    assert Scheduler(app).fire_due(NOW - timedelta(seconds=1)) == NOW
    assert fired(schedule) == []


def test_a_paused_schedule_and_one_of_a_task_this_worker_does_not_know_never_fire() -> None:
    paused = make_schedule(name="paused", enabled=False)
    unknown = make_schedule(name="unknown", task_name="not_a_task_here")
    assert Scheduler(app).fire_due(NOW + timedelta(hours=1)) is None
    assert fired(paused) == fired(unknown) == []


def test_a_firing_made_by_another_worker_is_not_made_again() -> None:
    schedule = make_schedule()
    seen_by_both = Schedule.objects.get(pk=schedule.pk)
    store = ScheduleStore()
    firing = Firing(expected=NOW, next_fire_at=NOW + timedelta(minutes=10), rows=[], fired_for=NOW)

    assert store.fire(seen_by_both, firing) is True
    assert store.fire(seen_by_both, firing) is False  # the compare-and-set no longer matches


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL")
def test_workers_racing_for_one_firing_make_exactly_one_task() -> None:
    schedule = make_schedule()
    start = threading.Barrier(6)
    errors: list[BaseException] = []

    def race() -> None:
        try:
            start.wait()
            Scheduler(app).fire_due(NOW + timedelta(seconds=1))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=race) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [task.scheduled_for for task in fired(schedule)] == [NOW]


def test_a_firing_whose_task_already_exists_is_not_duplicated() -> None:
    schedule = make_schedule()
    Scheduler(app).fire_due(NOW)
    # Edited back to a time it already fired at: the unique (schedule, scheduled_for) holds.
    Schedule.objects.filter(pk=schedule.pk).update(next_fire_at=NOW)
    Scheduler(app).fire_due(NOW)
    assert [task.scheduled_for for task in fired(schedule)] == [NOW]
    schedule.refresh_from_db()
    assert schedule.next_fire_at == NOW + timedelta(minutes=10)


def test_a_firing_whose_arguments_no_longer_bind_says_so_and_the_schedule_goes_on() -> None:
    schedule = make_schedule(task_name="scheduled_report", kwargs={"days": 1, "weeks": 2})
    Scheduler(app).fire_due(NOW)
    schedule.refresh_from_db()
    assert fired(schedule) == []
    assert "weeks" in schedule.last_error and "made no task" in schedule.last_error
    assert schedule.next_fire_at == NOW + timedelta(minutes=10)


# -- missed runs ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        # Down from 12:00 to 13:05: firings at 12:00, 12:10, ..., 13:00 were missed.
        (MissedRuns.ONCE, [NOW + timedelta(hours=1)]),
        (MissedRuns.ALL, [NOW + timedelta(minutes=10 * k) for k in range(7)]),
        (MissedRuns.SKIP, []),
    ],
)
def test_missed_runs_after_an_hour_without_workers(policy, expected) -> None:
    schedule = make_schedule(missed_runs=policy)
    Scheduler(app).fire_due(NOW + timedelta(hours=1, minutes=5))
    schedule.refresh_from_db()
    assert [task.scheduled_for for task in fired(schedule)] == expected
    assert schedule.next_fire_at == NOW + timedelta(hours=1, minutes=10)


def test_skip_still_runs_a_firing_that_is_on_time() -> None:
    schedule = make_schedule(missed_runs=MissedRuns.SKIP)
    Scheduler(app).fire_due(NOW + timedelta(seconds=30))
    assert [task.scheduled_for for task in fired(schedule)] == [NOW]


def test_catching_up_every_missed_firing_is_bounded() -> None:
    schedule = make_schedule(missed_runs=MissedRuns.ALL, interval=timedelta(minutes=1))
    with qtasks_settings(SCHEDULE_CATCH_UP_MAX=5):
        Scheduler(app).fire_due(NOW + timedelta(days=2))
    times = [task.scheduled_for for task in fired(schedule)]
    last = NOW + timedelta(days=2)
    assert times == [last - timedelta(minutes=k) for k in range(4, -1, -1)]  # the latest five


# -- run now, retries -------------------------------------------------------------------------------------


def test_run_now_enqueues_outside_the_timetable() -> None:
    schedule = make_schedule(task_name="scheduled_report", kwargs={"days": 1})
    task = Scheduler(app).run_now(schedule)
    record = TaskRecord.objects.get(pk=task.uuid)
    schedule.refresh_from_db()
    assert (record.schedule_id, record.scheduled_for, record.kwargs) == (schedule.pk, None, {"days": 1})
    assert schedule.next_fire_at == NOW and schedule.last_task_uuid == task.uuid


def test_a_retry_of_a_scheduled_task_stays_in_the_schedule_history() -> None:
    schedule = make_schedule()
    Scheduler(app).fire_due(NOW)
    [task] = fired(schedule)
    TaskRecord.objects.filter(pk=task.pk).update(status=TaskStatus.ERROR, finished_at=timezone.now())
    result = retry_task(task.pk)
    child = TaskRecord.objects.get(pk=result.task_uuid)
    assert (child.schedule_id, child.scheduled_for) == (schedule.pk, None)


# -- in a worker --------------------------------------------------------------------------------------------


def wait_until(condition, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)
    pytest.fail(f"condition not met within {timeout}s")


def test_a_worker_fires_a_schedule_on_time_and_runs_each_firing_once(background_worker) -> None:
    schedule = make_schedule(
        interval=timedelta(seconds=1), next_fire_at=timezone.now() + timedelta(seconds=1)
    )
    background_worker()
    wait_until(lambda: TaskRecord.objects.filter(schedule=schedule, status=TaskStatus.SUCCESS).count() >= 3)
    times = [task.scheduled_for for task in fired(schedule)]
    assert len(times) == len(set(times))
    gaps = {later - earlier for earlier, later in itertools.pairwise(times)}
    assert gaps == {timedelta(seconds=1)}


def test_a_schedule_created_while_the_worker_sleeps_fires_without_a_restart(background_worker) -> None:
    background_worker()
    time.sleep(0.5)  # the worker has synced and sleeps: no schedule is due
    schedule = make_schedule(
        interval=timedelta(hours=1), next_fire_at=timezone.now() + timedelta(seconds=0.5)
    )
    ScheduleStore().notify_changed()
    task = wait_until(lambda: TaskRecord.objects.filter(schedule=schedule, status=TaskStatus.SUCCESS).first())
    assert task.returning == "tick"


def test_a_worker_started_without_schedules_fires_none(background_worker) -> None:
    schedule = make_schedule(next_fire_at=timezone.now())
    worker = background_worker(schedules=False)
    time.sleep(1.0)
    assert worker.clock is None
    assert fired(schedule) == []


def test_a_django_task_is_scheduled_by_its_path_and_fires_through_the_backend() -> None:
    pytest.importorskip("qtasks_django.backend.compat", reason="Django's Tasks framework is not installed")
    with qtasks_settings(
        SCHEDULES={"dj": {"task": "tests.tasks_django.dj_add", "cron": "@hourly", "args": [2, 3]}}
    ):
        Scheduler(app).sync()
    schedule = Schedule.objects.get(name="dj")
    Schedule.objects.filter(pk=schedule.pk).update(next_fire_at=NOW)
    Scheduler(app).fire_due(NOW)
    [task] = fired(schedule)
    assert (task.task_name, task.args) == ("tests.tasks_django.dj_add", [2, 3])
