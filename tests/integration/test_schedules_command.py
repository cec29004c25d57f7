"""``manage.py qtasks_schedules`` on the real database: sync, list (table and JSON), run now.

Each test runs on PostgreSQL and on SQLite (``DATABASE_URL``). Options are strings, as on
a command line, so that argparse reads and checks them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from qtasks_django.models import Schedule, TaskRecord
from tests.factories import ScheduleFactory
from tests.integration.helpers import qtasks_settings

pytestmark = pytest.mark.django_db(transaction=True)

NIGHTLY = {"task": "scheduled_report", "cron": "0 3 * * *", "args": [7], "timezone": "Europe/Berlin"}


def run(*argv: str) -> str:
    out = StringIO()
    call_command("qtasks_schedules", *argv, stdout=out)
    return out.getvalue()


def listed(*argv: str) -> list[dict]:
    return json.loads(run("--json", *argv))


def test_the_listing_syncs_the_declared_schedules_first() -> None:
    with qtasks_settings(SCHEDULES={"nightly": NIGHTLY}):
        out = run()
    row = Schedule.objects.get(name="nightly")
    assert out.startswith("Synced the declared schedules: 1 created, 0 updated, 0 disabled")
    lines = out.splitlines()
    assert lines[1].split() == [
        "NAME",
        "TASK",
        "STATE",
        "ORIGIN",
        "TIMING",
        "NEXT",
        "FIRING",
        "NEXT",
        "(UTC)",
        "LAST",
        "FIRED",
        "(UTC)",
    ]
    assert set(lines[2]) == {"-", " "}
    line = lines[3]
    assert line.startswith("nightly  scheduled_report  enabled  settings  At 03:00 every day (Europe/Berlin)")
    assert row.next_fire_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") in line
    assert " 03:00:00 CE" in line  # 03:00 in Berlin: CET or CEST
    assert line.endswith("-")  # never fired


def test_a_second_listing_syncs_nothing_new_and_says_nothing_of_it() -> None:
    with qtasks_settings(SCHEDULES={"nightly": NIGHTLY}):
        run()
        out = run()
    assert not out.startswith("Synced")
    assert out.splitlines()[2].startswith("nightly")


def test_no_sync_lists_only_what_the_database_holds() -> None:
    with qtasks_settings(SCHEDULES={"nightly": NIGHTLY}):
        assert run("--no-sync") == "No schedules.\n"
    assert not Schedule.objects.exists()


def test_json_lists_every_schedule_with_iso_datetimes() -> None:
    fired = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    ScheduleFactory(name="b-paused", enabled=False, last_fired_at=fired, last_error="boom")
    with qtasks_settings(SCHEDULES={"a-nightly": NIGHTLY}):
        shown = listed()
    assert [item["name"] for item in shown] == ["a-nightly", "b-paused"]
    nightly, paused = shown
    assert nightly["state"] == "enabled" and nightly["origin"] == "settings"
    assert (nightly["cron"], nightly["interval_seconds"], nightly["timezone"]) == (
        "0 3 * * *",
        None,
        "Europe/Berlin",
    )
    at, local = (datetime.fromisoformat(nightly[key]) for key in ("next_fire_at", "next_fire_at_local"))
    assert at == local and at.utcoffset() == timedelta(0) and local.hour == 3
    assert local.utcoffset() in (timedelta(hours=1), timedelta(hours=2))
    assert (nightly["last_fired_at"], nightly["last_task_uuid"], nightly["last_error"]) == (None, None, "")
    assert paused["state"] == "paused" and paused["next_fire_at"] is None
    assert (paused["interval_seconds"], paused["timing"]) == (600.0, "Every 10 minutes")
    assert datetime.fromisoformat(paused["last_fired_at"]) == fired
    assert paused["last_error"] == "boom"
    assert "upcoming" not in nightly


def test_next_lists_the_next_firings_of_enabled_schedules() -> None:
    row = ScheduleFactory(name="tick")
    ScheduleFactory(name="paused", enabled=False)
    shown = {item["name"]: item for item in listed("--next", "3")}
    upcoming = [datetime.fromisoformat(moment) for moment in shown["tick"]["upcoming"]]
    assert upcoming == [row.next_fire_at + timedelta(minutes=10 * k) for k in range(3)]
    assert shown["paused"]["upcoming"] == []

    table = run("--next=2")
    assert "Next firings of tick:\n" in table
    first = row.next_fire_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    assert f"  {first} UTC  ({first} UTC)\n" in table
    assert "Next firings of paused:\n  none (paused)" in table


def test_a_schedule_gone_from_settings_is_listed_as_removed() -> None:
    with qtasks_settings(SCHEDULES={"nightly": NIGHTLY}):
        run()
    with qtasks_settings(SCHEDULES={}):
        out = run()
        (shown,) = listed()
    assert "0 created, 0 updated, 1 disabled" in out
    assert shown["state"] == "removed" and shown["next_fire_at"] is None


def test_last_errors_are_listed_below_the_table_one_line_each() -> None:
    ScheduleFactory(name="bad\nname", last_error="firing made no task:\nmissing 'days'")
    out = run("--no-sync")
    assert "bad?name" in out.splitlines()[2]
    assert out.endswith("Last errors:\n  bad?name: firing made no task:?missing 'days'\n")


def test_a_timing_that_no_longer_parses_is_listed_not_a_crash() -> None:
    ScheduleFactory(name="lost-zone", interval=None, cron="@daily", timezone="Gone/Away")
    (shown,) = listed("--no-sync", "--next", "3")
    assert (
        shown["timing"]
        == "invalid: 'Gone/Away' is not a known time zone (an IANA name such as 'Europe/Berlin')"
    )
    assert shown["upcoming"] == []
    assert "invalid: 'Gone/Away'" in run("--no-sync")


# --run


def test_run_enqueues_the_task_now_and_prints_its_uuid() -> None:
    with qtasks_settings(SCHEDULES={"nightly": NIGHTLY}):
        out = run("--run", "nightly")
    row = Schedule.objects.get(name="nightly")
    (task,) = TaskRecord.objects.filter(schedule=row)
    assert out.endswith(f"Enqueued task {task.uuid} (scheduled_report) for schedule 'nightly'.\n")
    assert (task.task_name, task.args, task.scheduled_for) == ("scheduled_report", [7], None)
    before = row.next_fire_at
    row.refresh_from_db()
    assert (row.last_task_uuid, row.next_fire_at) == (task.uuid, before)  # the timetable is unchanged


def test_run_json_says_what_was_enqueued() -> None:
    ScheduleFactory(name="tick")
    done = json.loads(run("--no-sync", "--run=tick", "--json"))
    task = TaskRecord.objects.get()
    assert done == {
        "schedule": "tick",
        "task": "scheduled_tick",
        "task_uuid": str(task.uuid),
        "state": "enabled",
    }


def test_run_of_a_paused_schedule_runs_and_says_it_is_paused() -> None:
    ScheduleFactory(name="tick", enabled=False)
    out = run("--no-sync", "--run", "tick")
    assert TaskRecord.objects.count() == 1
    assert "The schedule is paused: it ran because you asked, and it still does not fire on its own." in out


def test_run_of_an_unknown_name_lists_the_known_ones() -> None:
    ScheduleFactory(name="tick")
    ScheduleFactory(name="tock")
    with pytest.raises(CommandError, match=r"^No schedule named 'tik'\. Known: 'tick', 'tock'\.$"):
        run("--no-sync", "--run", "tik")
    Schedule.objects.all().delete()
    with pytest.raises(CommandError, match=r"No schedule named 'tik'\. There are no schedules\."):
        run("--no-sync", "--run", "tik")
    assert not TaskRecord.objects.exists()


def test_run_of_a_schedule_whose_arguments_no_longer_bind_is_a_command_error() -> None:
    ScheduleFactory(name="report", task_name="scheduled_report", args=[], kwargs={})
    with pytest.raises(
        CommandError, match=r"Schedule 'report' made no task: .*missing a required argument: 'days'"
    ):
        run("--no-sync", "--run", "report")
    assert not TaskRecord.objects.exists()


@pytest.mark.parametrize("name", ["a'b", "ünïcødé ✓", "x" * 200])
def test_run_finds_any_name_a_schedule_may_have(name) -> None:
    ScheduleFactory(name=name)
    run("--no-sync", "--run", name)
    assert TaskRecord.objects.filter(schedule__name=name).count() == 1
