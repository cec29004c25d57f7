"""The schedules admin: the add form checks a schedule as a firing would, declared schedules
are read-only, pause/resume/run now act once behind their permissions, and the pages show
the next firings, the latest runs and the success rate. Runs on PostgreSQL and SQLite.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from qtasks_django.models import Schedule, ScheduleOrigin, TaskRecord
from qtasks_django.status import TaskStatus
from tests.factories import ScheduleFactory, TaskRecordFactory
from tests.integration.admin_helpers import staff_client

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:qtasks_django_schedule_changelist")
ADD = reverse("admin:qtasks_django_schedule_add")
TASKS = reverse("admin:qtasks_django_taskrecord_changelist")
FORM = {
    "name": "monthly-report",
    "task_name": "scheduled_report",
    "cron": "0 3 * * *",
    "interval": "",
    "timezone": "Europe/Berlin",
    "args": "[30]",
    "kwargs": '{"label": "monthly"}',
    "queue": "",
    "priority": "",
    "missed_runs": "once",
    "enabled": "on",
}


def make_schedule(**fields) -> Schedule:
    return ScheduleFactory(**fields)


def change_url(schedule: Schedule) -> str:
    return reverse("admin:qtasks_django_schedule_change", args=[schedule.pk])


def button_url(name: str, schedule: Schedule) -> str:
    return reverse(f"admin:qtasks_django_schedule_{name}", args=[schedule.pk])


def messages_of(response) -> list[str]:
    """The messages shown after an action (its redirect followed: earlier ones were shown before)."""
    return [str(m) for m in get_messages(response.wsgi_request)]


def list_action(client, action: str, *schedules: Schedule, nonce: str = ""):
    data = {"action": action, "_selected_action": [s.pk for s in schedules], "index": 0, "nonce": nonce}
    return client.post(CHANGELIST, data, follow=True)


# -- the add form -----------------------------------------------------------------------------


def test_a_valid_schedule_is_saved_with_its_next_firing(admin_client) -> None:
    response = admin_client.post(ADD, FORM)

    assert response.status_code == 302, response.context["adminform"].form.errors
    row = Schedule.objects.get(name="monthly-report")
    assert (row.origin, row.task_name, row.args, row.kwargs, row.timezone) == (
        ScheduleOrigin.ADMIN,
        "scheduled_report",
        [30],
        {"label": "monthly"},
        "Europe/Berlin",
    )
    berlin = row.next_fire_at.astimezone(ZoneInfo("Europe/Berlin"))
    assert (berlin.hour, berlin.minute) == (3, 0)
    assert timezone.now() < row.next_fire_at <= timezone.now() + timedelta(days=1)


def test_an_interval_schedule_fires_one_interval_from_now(admin_client) -> None:
    before = timezone.now()
    admin_client.post(ADD, {**FORM, "cron": "", "interval": "00:05:00", "timezone": ""})

    row = Schedule.objects.get(name="monthly-report")
    assert row.interval == timedelta(minutes=5) and row.cron == ""
    assert row.timezone == "UTC"  # the test settings' TIME_ZONE
    assert before + timedelta(minutes=5) <= row.next_fire_at <= timezone.now() + timedelta(minutes=5)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cron": "61 * * * *"}, "'61 * * * *' is not a valid cron expression"),
        ({"cron": "", "interval": ""}, "give a cron expression or an interval"),
        ({"interval": "00:05:00"}, "give a cron expression or an interval, not both"),
        ({"timezone": "Mars/Olympus"}, "'Mars/Olympus' is not a known time zone"),
        ({"args": "[]", "kwargs": "{}"}, "days"),
        ({"args": "[1, 2, 3]"}, "scheduled_report"),
        ({"kwargs": '{"colour": "red"}'}, "colour"),
        ({"args": '{"days": 30}'}, "args must be a list"),
        ({"priority": "99999999999"}, "priority"),
    ],
    ids=[
        "bad cron",
        "neither",
        "both",
        "bad zone",
        "missing arg",
        "too many args",
        "unknown kwarg",
        "args not a list",
        "priority",
    ],
)
def test_an_invalid_schedule_is_refused_with_the_problem_and_nothing_saved(
    admin_client, changes, message
) -> None:
    response = admin_client.post(ADD, {**FORM, **changes})

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert message in " ".join(str(error) for errors in form.errors.values() for error in errors)
    assert not Schedule.objects.exists()


def test_an_unknown_task_is_refused(admin_client) -> None:
    response = admin_client.post(ADD, {**FORM, "task_name": "no_such_task"})

    assert "task_name" in response.context["adminform"].form.errors
    assert not Schedule.objects.exists()


def test_the_task_field_offers_the_registered_tasks(admin_client) -> None:
    form = admin_client.get(ADD).context["adminform"].form
    names = [value for value, _label in form.fields["task_name"].choices]
    assert {"scheduled_tick", "scheduled_report", "scheduled_async_tick"} <= set(names)
    assert form.fields["timezone"].initial == "UTC"


# -- changing: the next firing moves only when the timing does, or when re-enabled --------------


def changed(admin_client, schedule: Schedule, **changes) -> Schedule:
    data = {**FORM, "name": schedule.name, "task_name": "scheduled_tick", "args": "[]", "kwargs": "{}"}
    data.update({"cron": "", "interval": "00:10:00", "timezone": "UTC", **changes})
    response = admin_client.post(change_url(schedule), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    schedule.refresh_from_db()
    return schedule


def test_an_edit_of_the_timing_moves_the_next_firing_and_other_edits_do_not(admin_client) -> None:
    far = timezone.now() + timedelta(days=300)
    schedule = make_schedule(next_fire_at=far)

    assert changed(admin_client, schedule, queue="maintenance").next_fire_at == far
    moved = changed(admin_client, schedule, interval="00:01:00")
    assert moved.next_fire_at <= timezone.now() + timedelta(minutes=1)


def test_disabling_keeps_the_next_firing_and_re_enabling_computes_it_from_now(admin_client) -> None:
    long_ago = timezone.now() - timedelta(days=30)
    schedule = make_schedule(next_fire_at=long_ago)
    data = {"enabled": ""}

    paused = changed(admin_client, schedule, **data)
    assert not paused.enabled and paused.next_fire_at == long_ago
    resumed = changed(admin_client, schedule, enabled="on")
    assert resumed.enabled and resumed.next_fire_at > timezone.now()


# -- schedules declared in code or settings ------------------------------------------------------


def test_a_declared_schedule_is_read_only_but_for_pausing(admin_client) -> None:
    declared = make_schedule(origin=ScheduleOrigin.SETTINGS)

    form = admin_client.get(change_url(declared)).context["adminform"].form
    assert list(form.fields) == ["enabled"]
    response = admin_client.post(change_url(declared), {"enabled": "", "cron": "* * * * *", "name": "x"})
    declared.refresh_from_db()
    assert response.status_code == 302
    assert (declared.enabled, declared.name, declared.cron) == (False, "tick", "")


def test_a_declared_schedule_is_deleted_only_once_it_left_the_code(admin_client) -> None:
    declared = make_schedule(origin=ScheduleOrigin.CODE)
    delete = reverse("admin:qtasks_django_schedule_delete", args=[declared.pk])

    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    bulk = admin_client.post(
        CHANGELIST, {"action": "delete_selected", "_selected_action": [declared.pk], "post": "yes"}
    )
    assert bulk.status_code == 403
    assert Schedule.objects.filter(pk=declared.pk).exists()

    Schedule.objects.filter(pk=declared.pk).update(removed_at=timezone.now(), enabled=False)
    assert admin_client.post(delete, {"post": "yes"}).status_code == 302
    assert not Schedule.objects.exists()


def test_a_schedule_gone_from_the_code_is_not_resumed(admin_client) -> None:
    gone = make_schedule(origin=ScheduleOrigin.CODE, enabled=False, removed_at=timezone.now())

    response = list_action(admin_client, "resume_selected", gone)

    gone.refresh_from_db()
    assert not gone.enabled
    assert "no longer declared in code or settings" in messages_of(response)[0]


# -- actions ------------------------------------------------------------------------------------


def test_pause_and_resume_act_once_and_say_so(admin_client) -> None:
    long_ago = timezone.now() - timedelta(days=30)
    schedule = make_schedule(next_fire_at=long_ago)

    assert messages_of(list_action(admin_client, "pause_selected", schedule)) == ["Paused 1 schedule."]
    assert messages_of(list_action(admin_client, "pause_selected", schedule)) == [
        "1 schedule already paused."
    ]
    schedule.refresh_from_db()
    assert not schedule.enabled

    assert messages_of(admin_client.post(button_url("resume", schedule), follow=True)) == [
        "Resumed 1 schedule."
    ]
    assert messages_of(admin_client.post(button_url("resume", schedule), follow=True)) == [
        "1 schedule already enabled."
    ]
    schedule.refresh_from_db()
    # From now on, not the missed month.
    assert schedule.enabled and timezone.now() < schedule.next_fire_at <= timezone.now() + timedelta(
        minutes=10
    )


def test_run_now_enqueues_the_task_once_per_page_and_links_to_it(admin_client) -> None:
    schedule = make_schedule(task_name="scheduled_report", args=[7])
    page = admin_client.get(change_url(schedule)).content.decode()
    nonce = page.split('name="nonce" value="')[1].split('"')[0]

    first = admin_client.post(button_url("run_now", schedule), {"nonce": nonce}, follow=True)
    again = admin_client.post(button_url("run_now", schedule), {"nonce": nonce}, follow=True)

    task = TaskRecord.objects.get(schedule=schedule)
    assert (task.task_name, task.args, task.scheduled_for, task.status) == (
        "scheduled_report",
        [7],
        None,
        "new",
    )
    link = reverse("admin:qtasks_django_taskrecord_change", args=[task.pk])
    assert link in messages_of(first)[0] and messages_of(first)[0].startswith("Run now of tick: task ")
    assert "Run now of tick: already made as task" in messages_of(again)[0]
    schedule.refresh_from_db()
    assert schedule.last_task_uuid == task.pk


def test_run_now_from_the_list_makes_one_task_per_schedule(admin_client) -> None:
    one, two = make_schedule(name="one"), make_schedule(name="two")
    nonce = "1f2e3d4c-0000-4000-8000-000000000001"

    list_action(admin_client, "run_now_selected", one, two, nonce=nonce)
    list_action(admin_client, "run_now_selected", one, two, nonce=nonce)

    assert sorted(t.schedule.name for t in TaskRecord.objects.all()) == ["one", "two"]


def test_run_now_of_arguments_that_no_longer_bind_says_why_and_makes_nothing(admin_client) -> None:
    schedule = make_schedule(task_name="scheduled_report", args=[], kwargs={})  # days is missing

    response = list_action(admin_client, "run_now_selected", schedule)

    assert not TaskRecord.objects.exists()
    assert messages_of(response)[0].startswith("Run now of tick: no task made:")


def test_run_now_needs_its_permission() -> None:
    schedule = make_schedule()
    client = staff_client("view_schedule", "change_schedule")

    assert client.post(button_url("run_now", schedule)).status_code == 403
    list_action(client, "run_now_selected", schedule)
    assert not TaskRecord.objects.exists()
    assert "Run now" not in client.get(change_url(schedule)).content.decode()

    allowed = staff_client("view_schedule", "run_schedule_now")
    assert allowed.post(button_url("run_now", schedule)).status_code == 302
    assert TaskRecord.objects.count() == 1


def test_pause_needs_the_change_permission() -> None:
    schedule = make_schedule()
    viewer = staff_client("view_schedule", "run_schedule_now")

    assert viewer.post(button_url("pause", schedule)).status_code == 403
    list_action(viewer, "pause_selected", schedule)
    schedule.refresh_from_db()
    assert schedule.enabled


# -- what the pages show -----------------------------------------------------------------------


def test_the_change_page_shows_the_next_five_firings_in_both_zones(admin_client) -> None:
    first = datetime(2030, 1, 7, 2, 0, tzinfo=UTC)  # 03:00 in Berlin
    schedule = make_schedule(cron="0 3 * * *", interval=None, timezone="Europe/Berlin", next_fire_at=first)

    page = admin_client.get(change_url(schedule)).content.decode()

    for day in range(7, 12):
        assert f"2030-01-{day:02d} 03:00:00 CET" in page
        assert f"2030-01-{day:02d} 02:00:00" in page  # the user's zone: UTC in the tests
    assert "2030-01-12 03:00:00" not in page
    assert "overdue" not in page
    assert "At 03:00 every day (Europe/Berlin)" in page


def test_a_firing_no_worker_made_shows_as_overdue(admin_client) -> None:
    schedule = make_schedule(next_fire_at=timezone.now() - timedelta(minutes=3))

    assert ">overdue</span>" in admin_client.get(change_url(schedule)).content.decode()


def test_the_change_page_shows_the_latest_runs_and_the_success_rate(admin_client) -> None:
    schedule = make_schedule()
    fired = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    for minutes, status in enumerate([TaskStatus.SUCCESS] * 3 + [TaskStatus.ERROR, TaskStatus.RETRY]):
        TaskRecordFactory(
            schedule=schedule,
            status=status,
            scheduled_for=fired + timedelta(minutes=minutes),
            created_at=fired + timedelta(minutes=minutes),
        )
    TaskRecordFactory(schedule=make_schedule(name="other"), status=TaskStatus.ERROR)

    page = admin_client.get(change_url(schedule)).content.decode()

    assert "75% (3 of 4; 1 failed, 0 cancelled)" in page
    assert page.count('class="qtasks-badge qtasks-status-') == 5
    assert "2026-03-01 12:04:00" in page
    assert f"{TASKS}?schedule={schedule.pk}" in page


def test_the_list_shows_timing_state_origin_next_and_last_firing_and_success_rate(admin_client) -> None:
    schedule = make_schedule(
        cron="*/5 * * * *", interval=None, next_fire_at=datetime(2030, 5, 1, 9, 5, tzinfo=UTC)
    )
    last = TaskRecordFactory(schedule=schedule, status=TaskStatus.SUCCESS)
    Schedule.objects.filter(pk=schedule.pk).update(last_task_uuid=last.pk, last_fired_at=last.created_at)
    make_schedule(name="gone", origin=ScheduleOrigin.CODE, enabled=False, removed_at=timezone.now())
    make_schedule(name="broken", last_error="firing at 2026-05-01 made no task: <missing 'days'>")

    response = admin_client.get(CHANGELIST)
    page = response.content.decode()

    assert response.status_code == 200
    assert "Every fifth minute of every hour (UTC)" in page
    assert "2030-05-01" in page and "09:05:00" in page
    assert reverse("admin:qtasks_django_taskrecord_change", args=[last.pk]) in page
    assert "100%<br>" in page and "1 of 1; 0 failed, 0 cancelled" in page
    assert ">removed</span>" in page and ">paused</span>" in page
    assert "made no task: &lt;missing &#x27;days&#x27;&gt;" in page  # escaped


def test_the_list_filters_and_searches(admin_client) -> None:
    make_schedule(name="tick")
    make_schedule(name="report", task_name="scheduled_report", args=[1], enabled=False)

    def names(**query) -> list[str]:
        return [s.name for s in admin_client.get(CHANGELIST, query).context["cl"].result_list]

    assert names(enabled__exact="0") == ["report"]
    assert names(task_name="scheduled_tick") == ["tick"]
    assert names(origin__exact="admin") == ["report", "tick"]
    assert names(q="repo") == ["report"]


# -- the task pages ----------------------------------------------------------------------------


def test_the_task_list_filters_by_schedule_and_refuses_a_garbage_value(admin_client) -> None:
    schedule = make_schedule()
    mine = TaskRecordFactory(schedule=schedule)
    TaskRecordFactory()

    response = admin_client.get(TASKS, {"schedule": schedule.pk})
    assert [t.pk for t in response.context["cl"].result_list] == [mine.pk]
    for garbage in ("abc", "-1", "0", "1.5", "99999999999999999999999", "²"):
        assert admin_client.get(TASKS, {"schedule": garbage}).status_code == 400, garbage


def test_a_scheduled_task_page_names_its_schedule_and_firing(admin_client) -> None:
    schedule = make_schedule(name="nightly")
    task = TaskRecordFactory(schedule=schedule, scheduled_for=datetime(2026, 3, 1, 3, 0, tzinfo=UTC))
    plain = TaskRecordFactory()

    page = admin_client.get(reverse("admin:qtasks_django_taskrecord_change", args=[task.pk])).content.decode()
    assert change_url(schedule) in page
    assert "nightly</a> (fired for 2026-03-01 03:00:00)" in page
    plain_page = admin_client.get(reverse("admin:qtasks_django_taskrecord_change", args=[plain.pk]))
    assert "field-fired_by" not in plain_page.content.decode()


# -- hostile input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"args": '["a\\u0000b"]'},
        {"kwargs": '{"label": "a\\u0000b"}'},
        {"name": "a\x00b"},
        {"cron": "0 3 * * *\x00"},
    ],
    ids=["nul in args", "nul in kwargs", "nul in name", "nul in cron"],
)
def test_a_nul_character_anywhere_in_the_form_is_a_form_error(admin_client, changes) -> None:
    response = admin_client.post(ADD, {**FORM, **changes})

    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert not Schedule.objects.exists()


@pytest.mark.parametrize(
    "query",
    ["q=%00", "origin__exact=%00", "task_name=%00", "enabled__exact=maybe", "origin__exact=nowhere", "o=99"],
)
def test_the_list_answers_a_hostile_parameter_with_a_400_or_the_list(admin_client, query) -> None:
    make_schedule()

    response = admin_client.get(f"{CHANGELIST}?{query}")

    assert response.status_code in (200, 302, 400)
    if "%00" in query:
        assert response.status_code == 400


def test_the_dashboard_counts_enabled_schedules_and_says_when_the_next_fires(admin_client) -> None:
    make_schedule(name="soon", next_fire_at=datetime(2030, 1, 1, 6, 0, tzinfo=UTC))
    make_schedule(name="later", next_fire_at=datetime(2030, 1, 2, 6, 0, tzinfo=UTC))
    make_schedule(name="paused", enabled=False, next_fire_at=datetime(2029, 1, 1, tzinfo=UTC))
    dashboard = reverse("admin:qtasks_django_taskrecord_dashboard")

    tile = admin_client.get(dashboard).content.decode().split('id="tile-schedules"')[1].split("</a>")[0]

    assert '<span class="qtasks-tile-value">2</span>' in tile
    assert "schedules enabled, next at 2030-01-01 06:00:00" in tile
    assert 'id="tile-schedules"' not in staff_client("view_taskrecord").get(dashboard).content.decode()
