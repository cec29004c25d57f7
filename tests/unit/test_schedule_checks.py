"""``manage.py check`` names every bad schedule declaration (qtasks_django.E013), without a query."""

from __future__ import annotations

import pytest
from django.core.checks import run_checks
from django.test import override_settings

from qtasks_django.checks import check_settings

E013 = "qtasks_django.E013"


def _messages(schedules):
    with override_settings(QTASKS={"SCHEDULES": schedules}):
        return check_settings()


def test_good_schedules_pass_the_checks() -> None:
    schedules = {
        "tick": {"task": "scheduled_tick", "interval": 60},
        "report": {"task": "scheduled_report", "cron": "0 3 * * 1", "args": [7], "timezone": "Europe/Berlin"},
        "django": {"task": "tests.tasks_django.dj_add", "cron": "@daily", "args": [1, 2]},
    }
    assert _messages(schedules) == []


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"task": "scheduled_tick", "cron": "61 * * * *"},
            "'61 * * * *' is not a valid cron expression: Bad minute",
        ),
        ({"task": "scheduled_tick", "interval": 0}, "an interval is from 1 second"),
        (
            {"task": "scheduled_tick", "cron": "@daily", "timezone": "Mars/Base"},
            "'Mars/Base' is not a known time zone",
        ),
        ({"task": "no_such_task", "cron": "@daily"}, "No task named 'no_such_task' is registered"),
        ({"task": "scheduled_report", "cron": "@daily"}, "missing a required argument: 'days'"),
        ({"task": "scheduled_tick", "cron": "@daily", "missed_runs": "never"}, "missed_runs must be one of"),
        ({"task": "scheduled_tick", "cron": "@daily", "every": 5}, "unknown keys ['every']"),
        ({"cron": "@daily"}, "'task' must name a registered task"),
    ],
)
def test_each_bad_schedule_is_e013_naming_it(entry, message) -> None:
    messages = _messages({"nightly": entry})
    assert [m.id for m in messages] == [E013]
    assert "'nightly'" in messages[0].msg and message in messages[0].msg
    assert messages[0].hint


def test_schedules_not_a_dict_is_e013() -> None:
    messages = _messages([{"task": "scheduled_tick", "cron": "@daily"}])
    assert [(m.id, m.msg) for m in messages] == [
        (E013, "QTASKS['SCHEDULES'] must be a dict of name -> schedule")
    ]


def test_every_bad_schedule_is_reported_at_once() -> None:
    schedules = {
        "good": {"task": "scheduled_tick", "cron": "@daily"},
        "a": {"task": "scheduled_tick", "cron": "bad"},
        "b": {"task": "nope", "interval": 5},
        "c": "0 3 * * *",
    }
    assert [m.id for m in _messages(schedules)] == [E013] * 3


def test_a_name_declared_by_the_decorator_and_in_settings_is_e013(shared) -> None:
    @shared(name="checked_hourly", schedule="@hourly")
    def checked_hourly() -> None:
        pass

    messages = _messages({"checked_hourly": {"task": "scheduled_tick", "cron": "@daily"}})
    assert [(m.id, m.msg) for m in messages] == [
        (E013, "Schedule 'checked_hourly' is declared both by @task(schedule=...) and in QTASKS['SCHEDULES']")
    ]


def test_schedule_checks_run_under_manage_py_check_with_no_query() -> None:
    # The unit tier refuses any query: the checks read only code and settings.
    with override_settings(QTASKS={"SCHEDULES": {"x": {"task": "scheduled_tick", "cron": "bad"}}}):
        assert [m.id for m in run_checks(tags=["qtasks"])] == [E013]


def test_a_broken_app_setting_is_e005_alone() -> None:
    with override_settings(QTASKS={"APP": "no.such.app", "SCHEDULES": {"x": {"task": "t", "cron": "bad"}}}):
        assert [m.id for m in check_settings()] == ["qtasks_django.E005"]
