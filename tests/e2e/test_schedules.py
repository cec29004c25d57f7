"""Schedules fired by real ``qtasks_worker`` processes: exactly once, missed runs, live changes, kills.

Schedules are made as the admin makes them (rows of origin ``admin``, then a "schedules"
notification); their task, ``scheduled_journal``, appends its uuid to the test's journal,
so each test counts runs as well as rows. Every test runs on PostgreSQL and SQLite.
"""

from __future__ import annotations

import json
import random
import re
import signal
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from qtasks_django import notifiers
from qtasks_django.models import MissedRuns, Schedule, ScheduleOrigin, TaskRecord
from qtasks_django.queue.schedules import ScheduleStore
from qtasks_django.schedules.scheduler import Scheduler
from qtasks_django.tasks.app import get_app
from qtasks_django.timing import Timing

from .conftest import wait_for
from .faults import Fleet, assert_no_leftovers, fleet_fixture, full_run, journal_fixture  # noqa: F401
from .ledger import Journal, report
from .scheduling import (
    assert_consecutive,
    assert_never_refused_by_the_constraint,
    assert_on_grid,
    assert_unique,
    firings,
    lateness,
    make_schedule,
    pause,
    sleep_until,
    times,
    wait_firings,
    wait_tasks_ended,
    whole_seconds_from_now,
)

pytestmark = pytest.mark.django_db(transaction=True)

SECOND = timedelta(seconds=1)
HOUR = timedelta(hours=1)
OPTIONS = ("--concurrency", "2")


def listens() -> bool:
    """Whether workers hear "schedules" notifications (PostgreSQL, Redis) or only re-read (SQLite)."""
    return notifiers.get_notifier("default").supports_listen


def test_three_workers_fire_each_firing_exactly_once_and_skip_none(
    fleet: Fleet, journal: Journal, record_property
) -> None:
    workers = [fleet.start(*OPTIONS, wait=False) for _ in range(3)]
    for worker in workers:
        worker.wait_registered()
    first = whole_seconds_from_now(2)
    cron = "*/2 * * * * *"
    schedules = {
        "once": (make_schedule("every-second-once", journal, first=first, every=1), SECOND),
        "all": (make_schedule("every-second-all", journal, first=first, every=1, missed_runs="all"), SECOND),
        "cron": (
            make_schedule(
                "cron-every-two-seconds",
                journal,
                first=Scheduler(get_app()).first_firing(Timing.parse(cron=cron), after=first - SECOND),
                cron=cron,
            ),
            2 * SECOND,
        ),
    }
    initial = {schedule.name: schedule.next_fire_at for schedule, _ in schedules.values()}
    duration = 120 if full_run() else 20
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        fleet.check_alive()
        time.sleep(0.5)
    paused_at = pause(*(s for s, _ in schedules.values()))

    ledger = wait_tasks_ended(
        *(s for s, _ in schedules.values()), journal=journal, timeout=60, check=fleet.check_alive
    )
    fleet.stop_all()

    ledger.assert_clean()
    late = []
    for schedule, step in schedules.values():
        schedule.refresh_from_db()
        made = firings(schedule)
        moments = [task.scheduled_for for task in made]
        assert moments[0] == initial[schedule.name]
        assert_consecutive(moments, step)
        # Nothing after the pause, nothing missing before it: the next firing follows the last.
        assert schedule.next_fire_at == moments[-1] + step
        assert schedule.next_fire_at > paused_at - 2 * step, (schedule.name, schedule.next_fire_at, paused_at)
        assert len(moments) >= duration / step.total_seconds() - 3
        late += [lateness(task) for task in made]
    assert_never_refused_by_the_constraint(workers)
    report(record_property, ledger, seconds=duration, max_late=max(late), firings=len(late))
    assert max(late) < 1.0, f"a firing was made {max(late):.2f}s late"


def test_after_every_worker_was_killed_for_an_hour_each_missed_runs_policy_holds(
    fleet: Fleet, journal: Journal, record_property
) -> None:
    before = [fleet.start(*OPTIONS, wait=False) for _ in range(2)]
    for worker in before:
        worker.wait_registered()
    first = whole_seconds_from_now(2)
    once = make_schedule("two-seconds-once", journal, first=first, every=2)
    every = make_schedule("two-seconds-all", journal, first=first, every=2, missed_runs=MissedRuns.ALL)
    ten_minutes = make_schedule(
        "ten-minutes-all", journal, first=first + HOUR, every=600, missed_runs=MissedRuns.ALL
    )
    skip = make_schedule("eighty-seconds-skip", journal, first=first + HOUR, every=80, missed_runs="skip")
    for schedule in (once, every):
        wait_firings(schedule, 3, timeout=30, check=fleet.check_alive)
    for worker in before:
        worker.send(signal.SIGKILL)
    for worker in before:
        assert worker.wait_exit(10) == -signal.SIGKILL
        assert_no_leftovers(worker)

    # The outage: as if the workers had died an hour ago and none ran since.
    outage_end = timezone.now()
    for schedule in (once, every):
        schedule.refresh_from_db()
        Schedule.objects.filter(pk=schedule.pk).update(
            next_fire_at=schedule.next_fire_at - HOUR, last_fired_at=schedule.last_fired_at - HOUR
        )
        for task in firings(schedule):
            TaskRecord.objects.filter(pk=task.pk).update(scheduled_for=task.scheduled_for - HOUR)
    # Seven ten-minute firings missed (the last 30 s ago); the 80 s schedule's latest
    # missed firing is 65 s late, past the 60 s grace, and its next is 15 s away.
    Schedule.objects.filter(pk=ten_minutes.pk).update(next_fire_at=outage_end - HOUR - 30 * SECOND)
    Schedule.objects.filter(pk=skip.pk).update(next_fire_at=outage_end - HOUR - 65 * SECOND)
    resumed_from = {s.name: Schedule.objects.get(pk=s.pk).next_fire_at for s in (once, every)}
    before_outage = {s.name: times(s) for s in (once, every)}

    after = [fleet.start(*OPTIONS, wait=False) for _ in range(2)]
    skip_next = outage_end + 15 * SECOND
    wait_firings(skip, 1, timeout=40, check=lambda: fleet.check_alive(*after))
    wait_for(lambda: times(once)[-1] >= skip_next, timeout=10, what="the 2 s schedules to go on")
    pause(once, every, ten_minutes, skip)
    ledger = wait_tasks_ended(
        once, every, ten_minutes, skip, journal=journal, timeout=60, check=lambda: fleet.check_alive(*after)
    )
    fleet.stop_all()
    ledger.assert_clean(reruns_allowed=True)  # tasks the killed workers held ran again

    step = 2 * SECOND
    for schedule in (once, every):
        moments = times(schedule)
        assert_unique(moments)
        assert_on_grid(moments, moments[0], step)
        assert moments[: len(before_outage[schedule.name])] == before_outage[schedule.name]
        assert_consecutive(before_outage[schedule.name], step)
    # once: one task for the hour, for its latest firing, then on time again.
    window = [t for t in firings(once) if t.scheduled_for >= resumed_from[once.name]]
    assert timedelta(0) <= window[0].created_at - window[0].scheduled_for < step + SECOND
    assert_consecutive([t.scheduled_for for t in window], step)
    assert window[0].scheduled_for > outage_end - step
    # all: the latest SCHEDULE_CATCH_UP_MAX (100) firings of the 1,800 missed, then on time.
    window = [t for t in firings(every) if t.scheduled_for >= resumed_from[every.name]]
    assert_consecutive([t.scheduled_for for t in window], step)
    latest_missed = window[99]
    assert timedelta(0) <= latest_missed.created_at - latest_missed.scheduled_for < step + SECOND
    assert window[0].scheduled_for > resumed_from[every.name] + 1000 * step  # the older ones left out
    made = [
        w
        for w in after
        if re.search(r"'two-seconds-all': \d+ firing\(s\) missed.* made 100 task", w.stderr())
    ]
    assert len(made) == 1, [w.stderr() for w in after]
    # all, within the bound: each of the seven ten-minute firings.
    assert times(ten_minutes) == [outage_end - HOUR - 30 * SECOND + k * 600 * SECOND for k in range(7)]
    # skip: none for the hour; the next firing on time.
    [on_time] = firings(skip)
    assert on_time.scheduled_for == skip_next and lateness(on_time) < 1.0
    for schedule in (once, every, ten_minutes, skip):
        schedule.refresh_from_db()
        assert schedule.next_fire_at > outage_end, schedule.name
    assert Schedule.objects.get(pk=ten_minutes.pk).next_fire_at == outage_end + 570 * SECOND
    assert Schedule.objects.get(pk=skip.pk).next_fire_at == skip_next + 80 * SECOND
    assert_never_refused_by_the_constraint([*before, *after])
    report(record_property, ledger, catch_up=len(times(every)))


def test_schedules_created_edited_paused_and_resumed_while_workers_sleep_take_effect_at_once(
    fleet: Fleet, journal: Journal, record_property
) -> None:
    # With notifications a worker polls every 5 s and re-reads schedules every 30 s: only
    # the "schedules" notification can make these firings on time. Without (SQLite) it
    # re-reads every poll, so the poll interval bounds the delay.
    poll = 5.0 if listens() else 1.0
    slack = 1.0 if listens() else poll + 1.0
    workers = [fleet.start(*OPTIONS, "--poll-interval", str(poll), wait=False) for _ in range(2)]
    for worker in workers:
        worker.wait_registered()
    time.sleep(1.0)  # both asleep, with no firing to wake up for

    hourly = make_schedule("hourly", journal, first=timezone.now() + SECOND, every=3600)
    [created] = wait_firings(hourly, 1, timeout=slack + 5, check=fleet.check_alive)
    assert lateness(created) < slack

    edited = Schedule.objects.get(pk=hourly.pk)
    edited.interval = 2 * SECOND  # as the admin saves a re-timed schedule: next firing from now
    edited.next_fire_at = Scheduler(get_app()).first_firing(Timing.parse(every=edited.interval))
    edited.save()
    ScheduleStore().notify_changed()
    made = wait_firings(hourly, 4, timeout=3 * 2 + slack + 5, check=fleet.check_alive)
    assert_consecutive([t.scheduled_for for t in made[1:]], 2 * SECOND)
    assert made[1].scheduled_for == edited.next_fire_at
    assert max(lateness(t) for t in made[1:]) < slack

    count = len(firings(hourly))
    paused_at = pause(hourly)
    time.sleep(3 * 2 + slack)
    after_pause = firings(hourly)
    assert all(t.scheduled_for <= paused_at for t in after_pause), [t.scheduled_for for t in after_pause]
    assert len(after_pause) <= count + 1  # one firing may have committed as the pause did

    # Resumed as the admin does: from its next firing after now, not catching up on the pause.
    resume_at = Scheduler(get_app()).first_firing(Timing.parse(every=edited.interval))
    ScheduleStore().set_enabled([hourly.pk], True, {hourly.pk: resume_at})
    resumed = wait_firings(hourly, len(after_pause) + 1, timeout=2 + slack + 5, check=fleet.check_alive)
    assert resumed[len(after_pause)].scheduled_for == resume_at
    assert lateness(resumed[len(after_pause)]) < slack
    pause(hourly)

    ledger = wait_tasks_ended(hourly, journal=journal, timeout=30, check=fleet.check_alive)
    fleet.stop_all()
    ledger.assert_clean()
    late = [lateness(t) for t in after_pause]
    report(record_property, ledger, poll=poll, created_late=late[0], max_late=max(late))


def test_workers_started_with_no_schedules_never_fire(fleet: Fleet, journal: Journal) -> None:
    idle = [fleet.start(*OPTIONS, "--no-schedules", wait=False) for _ in range(2)]
    for worker in idle:
        worker.wait_registered()
    due = timezone.now().replace(microsecond=0) - 2 * SECOND
    every_second = make_schedule("every-second", journal, first=due, every=1)
    time.sleep(3.0)
    assert firings(every_second) == []
    assert Schedule.objects.get(pk=every_second.pk).next_fire_at == due

    firing = fleet.start(*OPTIONS)
    started = timezone.now()
    made = wait_firings(every_second, 3, timeout=15, check=fleet.check_alive)
    pause(every_second)
    ledger = wait_tasks_ended(every_second, journal=journal, timeout=30, check=fleet.check_alive)
    fleet.stop_all()
    ledger.assert_clean()
    # The missed ones (once): a single task for the latest, made by the worker that fires.
    assert made[0].scheduled_for >= started - 2 * SECOND
    assert_consecutive(times(every_second), SECOND)
    assert all("missed" not in w.stderr() for w in idle)
    assert "'every-second': " in firing.stderr()  # it logged the missed firings it made up for


def test_workers_killed_while_firing_leave_no_duplicate_and_lose_no_firing(
    fleet: Fleet, journal: Journal, record_property
) -> None:
    live = [fleet.start(*OPTIONS, wait=False) for _ in range(3)]
    for worker in live:
        worker.wait_registered()
    first = whole_seconds_from_now(2)
    every = make_schedule("chaos-all", journal, first=first, every=1, missed_runs=MissedRuns.ALL)
    once = make_schedule("chaos-once", journal, first=first, every=1)
    rounds = 60 if full_run() else 12
    rng = random.Random()
    kills = 0
    for n in range(rounds):
        # A few milliseconds after a firing time, when the workers race for it.
        sleep_until(first + (n + 1) * SECOND + timedelta(milliseconds=rng.uniform(0, 30)))
        victims = list(live) if n % 6 == 5 else [rng.choice(live)]  # now and then, every worker
        for victim in victims:
            victim.send(signal.SIGKILL)
            live.remove(victim)
            live.append(fleet.start(*OPTIONS, wait=False))
        kills += len(victims)
    for worker in [w for w in fleet.workers if w not in live]:
        assert worker.wait_exit(10) == -signal.SIGKILL
        assert_no_leftovers(worker)
    for worker in live:
        worker.wait_registered()
    caught_up = timezone.now() + 2 * SECOND
    wait_for(lambda: all(times(s)[-1] >= caught_up for s in (every, once)), timeout=20, what="a catch-up")
    pause(every, once)
    ledger = wait_tasks_ended(
        every, once, journal=journal, timeout=60, check=lambda: fleet.check_alive(*live)
    )
    fleet.stop_all()

    ledger.assert_clean(reruns_allowed=True)  # a killed worker's running task is rescued and rerun
    # all: every firing from the first to the last, once each, through every kill.
    assert_consecutive(times(every), SECOND)
    assert times(every)[0] == first
    # once: never twice, always on the timetable, and each the latest firing due when made
    # (a firing late past the next one makes one task for both: gaps are allowed).
    made = firings(once)
    assert_unique([t.scheduled_for for t in made])
    assert_on_grid([t.scheduled_for for t in made], first, SECOND)
    assert max(lateness(t) for t in made) < 1 + 2.0
    assert_never_refused_by_the_constraint(fleet.workers)
    report(
        record_property,
        ledger,
        kills=kills,
        all_firings=len(times(every)),
        once_firings=len(made),
        once_skipped=(made[-1].scheduled_for - made[0].scheduled_for) // SECOND + 1 - len(made),
        max_late_all=max(lateness(t) for t in firings(every)),
    )


def test_a_schedule_moved_back_over_firings_already_made_makes_only_the_others(
    fleet: Fleet, journal: Journal
) -> None:
    before = [fleet.start(*OPTIONS, wait=False) for _ in range(2)]
    for worker in before:
        worker.wait_registered()
    first = whole_seconds_from_now(2)
    rewound = make_schedule("rewound-all", journal, first=first, every=1, missed_runs=MissedRuns.ALL)
    wait_firings(rewound, 4, timeout=20, check=fleet.check_alive)
    for worker in before:
        worker.send(signal.SIGKILL)
        worker.wait_exit(10)
    # Moved back an hour by hand (a restored backup, an edit in the shell): the latest
    # 100 firings of the "missed" hour include the ones made before the kill.
    rewound.refresh_from_db()
    Schedule.objects.filter(pk=rewound.pk).update(next_fire_at=rewound.next_fire_at - HOUR)
    made_before = times(rewound)

    after = fleet.start(*OPTIONS)
    resumed = timezone.now()
    wait_for(lambda: times(rewound)[-1] >= resumed + 2 * SECOND, timeout=20, what="the catch-up")
    pause(rewound)
    ledger = wait_tasks_ended(rewound, journal=journal, timeout=60, check=lambda: fleet.check_alive(after))
    fleet.stop_all()
    ledger.assert_clean(reruns_allowed=True)

    # The latest 100 firings of the "missed" hour, from before the schedule existed to
    # after the restart, each once: those made before the kill were not made again.
    moments = times(rewound)
    assert set(made_before) <= set(moments)
    assert_consecutive(moments, SECOND)
    assert moments[0] < made_before[0] - 90 * SECOND
    assert "'rewound-all': " in after.stderr() and "already made" in after.stderr()
    rewound.refresh_from_db()
    assert rewound.last_task_uuid == firings(rewound)[-1].uuid


def test_workers_starting_together_sync_a_settings_schedule_once_and_fire_it_once(
    fleet: Fleet, journal: Journal
) -> None:
    declared = {"settings-tick": {"task": "scheduled_journal", "interval": 1, "args": [str(journal)]}}
    env = {"QTASKS_TEST_SCHEDULES": json.dumps(declared)}
    workers = [fleet.start(*OPTIONS, env=env, wait=False) for _ in range(3)]
    for worker in workers:
        worker.wait_registered()
    # A worker registers, then syncs.
    wait_for(lambda: Schedule.objects.filter(name="settings-tick").exists(), timeout=15, what="the sync")
    [row] = Schedule.objects.filter(name="settings-tick")
    assert (row.origin, row.task_name, row.interval) == (ScheduleOrigin.SETTINGS, "scheduled_journal", SECOND)
    wait_firings(row, 4, timeout=15, check=fleet.check_alive)
    pause(row)
    ledger = wait_tasks_ended(row, journal=journal, timeout=30, check=fleet.check_alive)
    fleet.stop_all()
    ledger.assert_clean()
    assert_consecutive(times(row), SECOND)
    assert not [w.id for w in workers if "syncing the declared schedules failed" in w.stderr()]
    created = [w.id for w in workers if "1 created" in w.stderr()]
    assert len(created) == 1, created
