"""A real ``qtasks_worker`` process runs what the test enqueues, in order, in parallel, within limits."""

from __future__ import annotations

import re
from datetime import timedelta
from itertools import pairwise

import pytest

from qtasks_django import app
from qtasks_django.models import TaskRecord
from qtasks_django.notifiers import get_notifier
from tests.tasks import (
    add,
    arouted,
    cancels,
    ctx_tour,
    e2e_in_queue_a,
    e2e_in_queue_b,
    e2e_span,
    exits,
    gen_list,
    not_listed,
    raises_base,
    record_order,
    too_slow_sync,
)

pytestmark = pytest.mark.django_db(transaction=True)

BURST_EXIT = 60  # generous: a burst run here takes a second or two


def _record(task) -> TaskRecord:
    return TaskRecord.objects.get(pk=task.uuid)


def test_burst_worker_runs_sync_async_generator_and_echo_tasks_then_exits_zero(start_worker):
    tasks = {
        "add": add.add_task(2, 3),
        "arouted": app.add_task("arouted", 4),
        "gen_list": gen_list.add_task(3),
        "ctx_tour": ctx_tour.add_task(),
        "not_listed": not_listed.add_task(),
        "cancels": cancels.add_task("enough"),
    }

    worker = start_worker("--burst", "--concurrency", "2")
    assert worker.wait_exit(BURST_EXIT) == 0, worker.describe()

    records = {name: _record(task) for name, task in tasks.items()}
    assert {name: r.status for name, r in records.items()} == {
        "add": "success",
        "arouted": "success",
        "gen_list": "success",
        "ctx_tour": "success",
        "not_listed": "error",
        "cancels": "cancel",
    }
    assert records["add"].returning == 5
    assert records["arouted"].returning == 12
    assert records["gen_list"].returning == ["H(0)", "H(1)", "H(2)"]
    assert app.get(tasks["gen_list"].uuid).progress == ["H(0)", "H(1)", "H(2)"]
    tour = records["ctx_tour"].returning
    assert tour["uuid"] == str(tasks["ctx_tour"].uuid)
    assert tour["meta_status"] == "process"
    assert tour["same"] is True
    assert (tour["worker"], tour["broker"], tour["app"]) == ("Worker", "DatabaseQueue", app.name)
    assert "ZeroDivisionError" in records["not_listed"].traceback
    assert records["cancels"].cancel_reason == "enough"
    assert {r.worker_id for r in records.values()} == {worker.id}

    # One log line per outcome, naming the task, its uuid and how it ended.
    outcomes = worker.outcomes()
    assert sorted((o["task"], o["uuid"], o["status"]) for o in outcomes) == sorted(
        (name, str(r.uuid), r.status) for name, r in records.items()
    ), worker.stderr()
    assert {o["attempt"] for o in outcomes} == {"1"}
    assert f"worker {worker.id} stopped after 6 task(s)" in worker.stderr()

    banner = worker.stdout()
    assert f"qtasks worker {worker.id}" in banner
    listed = re.search(r"tasks \((\d+)\): (.+)", banner)
    assert listed, banner
    names = listed.group(2).split(", ")
    assert int(listed.group(1)) == len(names)
    assert set(names) == set(app.tasks)
    assert {"add", "arouted", "gen_list", "ctx_tour", "e2e_span"} <= set(names)
    assert "queues: * (all)" in banner
    assert "concurrency: 2" in banner
    # The worker wakes through the notifier this configuration chooses (Redis when QTASKS_TEST_NOTIFIER=redis).
    assert f"notifier: {get_notifier().describe()} " in banner, banner


def test_banner_does_not_print_the_redis_password(start_worker):
    secret = "e2e-not-a-real-secret"
    worker = start_worker(
        "--burst",
        env={"QTASKS_TEST_NOTIFIER": "redis", "REDIS_URL": f"redis://:{secret}@127.0.0.1:6379/15"},
    )
    assert worker.wait_exit(BURST_EXIT) == 0, worker.describe()  # Redis is only an accelerator

    banner = worker.stdout()
    assert "notifier: RedisNotifier" in banner, banner
    assert secret not in banner


def test_queues_option_serves_only_those_queues(start_worker):
    in_a = e2e_in_queue_a.add_task(1)
    in_b = e2e_in_queue_b.add_task(2)
    elsewhere = add.add_task(1, 1)

    # --log-level WARNING: outcomes that went well are not logged, the run itself is the same.
    worker = start_worker("--burst", "--queues", "e2e_a, e2e_b", "--log-level", "WARNING")
    assert worker.wait_exit(BURST_EXIT) == 0, worker.describe()

    assert (_record(in_a).status, _record(in_a).returning, _record(in_a).queue) == ("success", "a:1", "e2e_a")
    assert (_record(in_b).status, _record(in_b).returning, _record(in_b).queue) == ("success", "b:2", "e2e_b")
    left = _record(elsewhere)
    assert (left.status, left.worker_id, left.queue) == ("new", "", "default")
    assert "queues: e2e_a, e2e_b" in worker.stdout()
    assert worker.outcomes() == [], worker.stderr()


def test_concurrency_three_runs_three_tasks_at_the_same_time(start_worker):
    spans = [e2e_span.add_task(1) for _ in range(3)]

    worker = start_worker("--burst", "--concurrency", "3")
    assert worker.wait_exit(BURST_EXIT) == 0, worker.describe()

    records = [_record(task) for task in spans]
    assert [r.status for r in records] == ["success"] * 3
    # The functions' own clocks: every run began before any ended.
    ran = [r.returning for r in records]
    assert max(run["start"] for run in ran) < min(run["end"] for run in ran)
    # And the records' intervals intersect too.
    assert max(r.started_at for r in records) < min(r.finished_at for r in records)


def test_concurrency_one_runs_by_priority_then_fifo(start_worker):
    labels = []
    for n, priority in enumerate([5, 1, 0, 3, 0, -1]):
        label = f"p{priority}#{n}"
        record_order.add_task(label, priority=priority)
        labels.append(label)

    worker = start_worker("--burst", "--concurrency", "1")
    assert worker.wait_exit(BURST_EXIT) == 0, worker.describe()

    records = list(TaskRecord.objects.filter(task_name="record_order").order_by("started_at"))
    assert [r.status for r in records] == ["success"] * 6
    assert [r.returning for r in records] == ["p-1#5", "p0#2", "p0#4", "p1#1", "p3#3", "p5#0"]
    # One at a time: each run started after the previous one finished.
    assert all(prev.finished_at <= nxt.started_at for prev, nxt in pairwise(records))


def test_max_time_ends_a_sync_task_and_frees_its_slot(start_worker):
    slow = too_slow_sync.add_task()  # max_time=0.5, sleeps 2 s
    after = add.add_task(1, 2)

    worker = start_worker("--burst", "--concurrency", "1")
    assert worker.wait_exit(BURST_EXIT) == 0, worker.describe()

    slow_row, after_row = _record(slow), _record(after)
    assert slow_row.status == "error"
    assert "TaskTimeoutError" in slow_row.traceback
    assert slow_row.returning is None
    assert slow_row.finished_at - slow_row.started_at < timedelta(seconds=1.5)
    # The only slot was free again long before the abandoned 2 s sleep ended.
    assert (after_row.status, after_row.returning) == ("success", 3)
    assert after_row.started_at - slow_row.started_at < timedelta(seconds=1.5)
    statuses = {(o["task"], o["status"]) for o in worker.outcomes()}
    assert statuses == {("too_slow_sync", "error"), ("add", "success")}, worker.stderr()


def test_task_raising_system_exit_or_keyboard_interrupt_does_not_stop_the_worker(start_worker):
    exiting = exits.add_task()
    interrupting = raises_base.add_task()
    after = add.add_task(2, 2)

    worker = start_worker("--burst", "--concurrency", "1")
    assert worker.wait_exit(BURST_EXIT) == 0, worker.describe()

    assert _record(exiting).status == "error"
    assert "SystemExit" in _record(exiting).traceback
    assert _record(interrupting).status == "error"
    assert "KeyboardInterrupt" in _record(interrupting).traceback
    assert (_record(after).status, _record(after).returning) == ("success", 4)
    assert len(worker.outcomes()) == 3, worker.stderr()


def test_add_task_with_timeout_waits_for_a_worker_in_another_process(start_worker):
    worker = start_worker()

    done = add.add_task(2, 3, timeout=30)

    assert done is not None, worker.describe()
    assert (done.status, done.returning, done.worker_id) == ("success", 5, worker.id)
    assert worker.alive()


async def test_awaited_add_task_with_timeout_waits_for_a_worker_in_another_process(start_worker):
    worker = start_worker()

    done = await arouted.add_task(5, timeout=30)

    assert done is not None, worker.describe()
    assert (done.status, done.returning, done.worker_id) == ("success", 15, worker.id)
