"""Schedule declarations: what ``@task(schedule=...)``, ``QTASKS["SCHEDULES"]`` and
``check_schedule`` refuse, each with a message naming the mistake. No database."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import override_settings

from qtasks_django import QueueTasks
from qtasks_django.exceptions import InvalidSchedule, InvalidTaskDefinition
from qtasks_django.models import MissedRuns, ScheduleOrigin
from qtasks_django.models.schedules import SCHEDULE_NAME_MAX
from qtasks_django.schedules.declarations import SETTINGS_KEYS, check_schedule, declared, from_settings


@pytest.fixture
def app(fresh_app: QueueTasks) -> QueueTasks:
    @fresh_app.task(name="tick")
    def tick() -> str:
        return "tick"

    @fresh_app.task(name="report")
    def report(days: int, *, label: str = "report") -> str:
        return f"{label}: {days}"

    @fresh_app.task(name="hourly", schedule="@hourly")
    def hourly() -> None:
        pass

    return fresh_app


def fields(**given: Any) -> dict[str, Any]:
    return {"task_name": "tick", "cron": "@daily", **given}


def refusal(name: Any, entry: Any) -> str:
    with pytest.raises(InvalidSchedule) as refused:
        from_settings(name, entry)
    return str(refused.value)


# QTASKS["SCHEDULES"] entries


def test_a_settings_entry_becomes_schedule_fields() -> None:
    got = from_settings(
        "nightly",
        {
            "task": "report",
            "cron": "0 3 * * *",
            "args": (7,),
            "kwargs": {"label": "x"},
            "timezone": "Europe/Berlin",
        },
    )
    assert got["task_name"] == "report" and got["origin"] == ScheduleOrigin.SETTINGS
    assert (got["args"], got["kwargs"], got["timezone"]) == ([7], {"label": "x"}, "Europe/Berlin")
    assert (got["missed_runs"], got["queue"], got["priority"]) == (MissedRuns.ONCE, "", None)


@pytest.mark.parametrize(
    ("interval", "expected"), [(90, timedelta(seconds=90)), (1.5, timedelta(seconds=1.5))]
)
def test_a_settings_interval_in_seconds_is_a_timedelta(interval, expected) -> None:
    assert from_settings("often", {"task": "tick", "interval": interval})["interval"] == expected


@pytest.mark.parametrize(
    ("name", "entry", "message"),
    [
        (
            "x",
            {"task": "tick", "cron": "@daily", "crontab": "x"},
            "unknown keys ['crontab'] (known: task, cron",
        ),
        ("x", {"task": "tick", "cron": "@daily", 5: 1}, "unknown keys [5]"),
        ("x", {"cron": "@daily"}, "'task' must name a registered task"),
        ("x", {"task": "", "cron": "@daily"}, "'task' must name a registered task"),
        ("x", {"task": 5, "cron": "@daily"}, "'task' must name a registered task"),
        ("x", "0 3 * * *", "must be a dict with 'task' and 'cron' or 'interval'"),
        ("x", None, "must be a dict"),
        (5, {"task": "tick", "cron": "@daily"}, "QTASKS['SCHEDULES'][5]: the name must be a string"),
        ("", {"task": "tick", "cron": "@daily"}, "the name must not be empty"),
        ("  ", {"task": "tick", "cron": "@daily"}, "the name must not be empty"),
        ("a\x00b", {"task": "tick", "cron": "@daily"}, "the name holds a NUL character"),
        ("n" * (SCHEDULE_NAME_MAX + 1), {"task": "tick"}, f"above the limit of {SCHEDULE_NAME_MAX}"),
    ],
)
def test_a_malformed_settings_entry_is_refused_naming_the_problem(name, entry, message) -> None:
    assert message in refusal(name, entry)


def test_the_known_keys_are_the_documented_ones() -> None:
    assert set(SETTINGS_KEYS) == {
        "task",
        "cron",
        "interval",
        "args",
        "kwargs",
        "timezone",
        "queue",
        "priority",
        "missed_runs",
    }


# check_schedule: as a firing would use the fields


def test_a_good_schedule_passes_and_returns_its_timing(app) -> None:
    timing = check_schedule(
        app, fields(task_name="report", args=[7], kwargs={"label": "x"}, timezone="Asia/Tokyo")
    )
    assert (timing.cron, timing.zone.key) == ("@daily", "Asia/Tokyo")


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"task_name": "nope"}, "No task named 'nope' is registered"),
        ({"task_name": "report"}, "missing a required argument: 'days'"),
        ({"task_name": "report", "args": [1, 2, 3]}, "too many positional arguments"),
        (
            {"task_name": "report", "args": [1], "kwargs": {"colour": "red"}},
            "unexpected keyword argument 'colour'",
        ),
        ({"args": "1"}, "args must be a list, got '1'"),
        ({"kwargs": [("a", 1)]}, "kwargs must be a dict, got [('a', 1)]"),
        ({"missed_runs": "sometimes"}, "missed_runs must be one of once, all, skip"),
        ({"cron": "61 * * * *"}, "'61 * * * *' is not a valid cron expression: Bad minute"),
        ({"cron": "", "interval": timedelta(0)}, "an interval is from 1 second"),
        ({"timezone": "Mars/Base"}, "'Mars/Base' is not a known time zone"),
        ({"queue": "a\x00b"}, "the queue name holds a NUL character"),
        ({"queue": "q" * 1000}, "queue names have at most 100 characters, got 1000"),
        ({"priority": 2**40}, "priority must be an int from -2147483648 to 2147483647"),
        ({"task_name": "report", "args": [float("nan")]}, "args[0]: nan is not valid JSON"),
        ({"task_name": "report", "args": [object()]}, "is not JSON-serialisable"),
    ],
)
def test_a_schedule_that_would_not_fire_is_refused_naming_the_problem(app, given, message) -> None:
    with pytest.raises(InvalidSchedule) as refused:
        check_schedule(app, fields(**given), name="nightly")
    assert str(refused.value).startswith("Schedule 'nightly': ")
    assert message in str(refused.value)


@pytest.mark.parametrize(
    ("name", "message"), [("a\x00b", "NUL"), ("x" * (SCHEDULE_NAME_MAX + 1), "above the limit")]
)
def test_check_schedule_refuses_a_bad_name(app, name, message) -> None:
    with pytest.raises(InvalidSchedule, match=message):
        check_schedule(app, fields(), name=name)


# @task(schedule=...)


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("bad", "schedule: 'bad' is not a valid cron expression"),
        ("@reboot", "schedule: '@reboot' is not a cron nickname"),
        (timedelta(0), "schedule: an interval is from 1 second"),
        (60, "schedule: a schedule is a cron expression (str) or a timedelta, got 60"),
    ],
)
def test_a_bad_decorator_schedule_is_refused_when_declared(registry, schedule, message) -> None:
    with pytest.raises(InvalidTaskDefinition) as refused:

        @registry.task(name="sched_bad", schedule=schedule)
        def sched_bad() -> None:
            pass

    assert message in str(refused.value)


def test_schedule_on_a_task_that_needs_arguments_is_refused(registry) -> None:
    with pytest.raises(
        InvalidTaskDefinition, match="schedule= enqueues it with no arguments, but it needs some"
    ):

        @registry.task(name="sched_needs", schedule="@daily")
        def sched_needs(days: int) -> None:
            pass


def test_schedule_on_a_task_with_defaults_only_is_accepted(fresh_app) -> None:
    @fresh_app.task(name="sched_defaults", schedule=timedelta(minutes=5))
    def sched_defaults(days: int = 7, *, label: str = "x") -> None:
        pass

    assert fresh_app.tasks["sched_defaults"].schedule == timedelta(minutes=5)


# declared(): code and settings together


def test_declared_gathers_code_and_settings_schedules(app) -> None:
    entries = {
        "nightly": {"task": "report", "cron": "0 3 * * *", "args": [7]},
        "often": {"task": "tick", "interval": 30},
    }
    with override_settings(QTASKS={"SCHEDULES": entries}, TIME_ZONE="Europe/Paris"):
        found, problems = declared(app)
    assert problems == []
    assert set(found) == {"hourly", "nightly", "often"}
    assert found["hourly"]["origin"] == ScheduleOrigin.CODE and found["hourly"]["cron"] == "@hourly"
    assert found["nightly"]["timezone"] == "Europe/Paris"  # no zone: TIME_ZONE
    assert found["often"]["interval"] == timedelta(seconds=30)


def test_a_name_declared_by_both_the_decorator_and_settings_is_a_problem(app) -> None:
    with override_settings(QTASKS={"SCHEDULES": {"hourly": {"task": "tick", "cron": "@daily"}}}):
        found, problems = declared(app)
    assert problems == [
        "Schedule 'hourly' is declared both by @task(schedule=...) and in QTASKS['SCHEDULES']"
    ]
    assert found["hourly"]["cron"] == "@hourly"  # the decorator's stands


def test_every_bad_entry_is_a_problem_and_the_good_ones_are_kept(app) -> None:
    entries = {
        "good": {"task": "tick", "cron": "@daily"},
        "typo": {"task": "tick", "cron": "@daily", "tz": "UTC"},
        "unknown-task": {"task": "nope", "cron": "@daily"},
        "bad-cron": {"task": "tick", "cron": "99 * * * *"},
    }
    with override_settings(QTASKS={"SCHEDULES": entries}):
        found, problems = declared(app)
    assert set(found) == {"hourly", "good"}
    assert len(problems) == 3
    assert any("QTASKS['SCHEDULES']['typo']: unknown keys ['tz']" in problem for problem in problems)
    assert any(problem.startswith("Schedule 'unknown-task': ") for problem in problems)
    assert any("Schedule 'bad-cron': '99 * * * *' is not a valid cron expression" in p for p in problems)


@pytest.mark.parametrize("value", [["nightly"], "nightly", 5])
def test_schedules_setting_not_a_dict_is_a_problem(app, value) -> None:
    with override_settings(QTASKS={"SCHEDULES": value}):
        found, problems = declared(app)
    assert set(found) == {"hourly"}
    assert problems == ["QTASKS['SCHEDULES'] must be a dict of name -> schedule"]


def test_a_settings_name_that_is_not_a_string_is_refused_not_a_crash(app) -> None:
    # It raised UnboundLocalError: the refusal's message read a variable never set for a non-string.
    with override_settings(QTASKS={"SCHEDULES": {("a", "b"): {"task": "tick", "cron": "@daily"}}}):
        _, problems = declared(app)
    assert problems == ["QTASKS['SCHEDULES'][('a', 'b')]: the name must be a string"]
