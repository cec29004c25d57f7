"""``manage.py qtasks_queues`` on the real database: list, pause, resume, explain, refusals.

Each test runs on PostgreSQL and on SQLite (``DATABASE_URL``). Options are strings, as on
a command line, so that argparse reads them.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from qtasks_django import app
from qtasks_django.models import PausedQueue
from tests.factories import TaskRecordFactory

pytestmark = pytest.mark.django_db


def run(*argv: str) -> str:
    out = StringIO()
    call_command("qtasks_queues", *argv, stdout=out)
    return out.getvalue()


def refusal(*argv: str) -> CommandError:
    with pytest.raises(CommandError) as refused:
        run(*argv)
    return refused.value


@pytest.fixture
def queues() -> None:
    """``emails``: 2 due, 1 later, 1 running; ``reports``: paused, empty; ``old``: only finished tasks."""
    TaskRecordFactory.create_batch(2, queue="emails")
    TaskRecordFactory(queue="emails", eta=timezone.now() + timedelta(hours=1))
    TaskRecordFactory(queue="emails", running=True)
    TaskRecordFactory(queue="old", succeeded=True)
    app.pause_queue("reports", reason="month-end\nclose", by="ops")


# Listing


def test_the_table_lists_busy_and_paused_queues_with_their_counts(queues) -> None:
    lines = run().splitlines()
    assert lines[0].split() == [
        "QUEUE",
        "WAITING",
        "READY",
        "RUNNING",
        "PAUSED",
        "SINCE",
        "(UTC)",
        "PAUSED",
        "BY",
        "REASON",
    ]
    assert set(lines[1]) == {"-", " "}
    assert lines[2].split() == ["emails", "3", "2", "1", "-"]
    since = PausedQueue.objects.get().paused_at.strftime("%Y-%m-%d %H:%M:%S")
    assert lines[3].split() == ["reports", "0", "0", "0", *since.split(), "ops", "month-end?close"]
    assert len(lines) == 4  # "old" has no waiting or running task


def test_json_gives_counts_and_the_pause_of_each_queue(queues) -> None:
    emails, reports = json.loads(run("--json"))
    assert emails == {
        "queue": "emails",
        "waiting": 3,
        "ready": 2,
        "running": 1,
        "paused": False,
        "pause": None,
    }
    assert {k: reports[k] for k in ("queue", "waiting", "ready", "running", "paused")} == {
        "queue": "reports",
        "waiting": 0,
        "ready": 0,
        "running": 0,
        "paused": True,
    }
    pause = reports["pause"]
    assert (pause["paused_by"], pause["reason"]) == ("ops", "month-end\nclose")
    assert datetime.fromisoformat(pause["paused_at"]) == PausedQueue.objects.get().paused_at


def test_no_queues_says_so() -> None:
    assert run() == "No queues: no task is waiting or running, and no queue is paused.\n"
    assert json.loads(run("--json")) == []


# --pause and --resume


def test_pause_records_who_and_why_and_a_second_pause_keeps_the_first() -> None:
    out = run("--pause", "emails", "--reason", "SMTP down")
    assert out == (
        "Paused queue 'emails': no worker claims its tasks until it is resumed; running tasks finish.\n"
    )
    (pause,) = app.paused_queues()
    assert (pause.queue, pause.reason) == ("emails", "SMTP down")
    assert pause.paused_by.startswith("manage.py qtasks_queues")

    again = run("--pause", "emails", "--reason", "other")
    assert again.startswith("Queue 'emails' was already paused (since ")
    assert f"by {pause.paused_by}: SMTP down); that pause is kept, its reason unchanged." in again
    assert app.paused_queues() == [pause]


def test_pause_json_says_whether_it_changed_anything() -> None:
    first = json.loads(run("--pause=emails", "--json"))
    assert (first["queue"], first["changed"], first["paused"]) == ("emails", True, True)
    assert first["pause"]["reason"] == ""
    assert first["pause"]["paused_by"].startswith("manage.py qtasks_queues")
    second = json.loads(run("--pause=emails", "--json"))
    assert (second["changed"], second["pause"]) == (False, first["pause"])


def test_resume_removes_the_pause_and_a_second_resume_changes_nothing() -> None:
    app.pause_queue("emails")
    app.pause_queue("reports")
    assert run("--resume", "emails") == "Resumed queue 'emails': workers claim its tasks again.\n"
    assert [p.queue for p in app.paused_queues()] == ["reports"]
    assert run("--resume", "emails") == (
        "Queue 'emails' was not paused; nothing changed. Paused: 'reports'.\n"
    )
    assert json.loads(run("--resume=reports", "--json")) == {
        "queue": "reports",
        "changed": True,
        "paused": False,
        "pause": None,
    }
    assert run("--resume", "reports").endswith("nothing changed. No queue is paused.\n")


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "queue must be a non-empty string, got ''"),
        ("q" * 101, "queue names have at most 100 characters, got 101"),
        ("a\x00b", "the queue name holds a NUL character"),
    ],
)
@pytest.mark.parametrize("verb", ["pause", "resume"])
def test_a_queue_name_no_column_holds_is_refused_and_changes_nothing(verb, name, problem) -> None:
    app.pause_queue("kept")
    refused = refusal(f"--{verb}", name)
    assert str(refused).startswith(f"Cannot {verb} {name!r}: {problem}")
    assert refused.returncode == 1
    assert list(PausedQueue.objects.values_list("queue", flat=True)) == ["kept"]


def test_a_reason_with_a_nul_or_without_pause_is_refused() -> None:
    assert "the reason holds a NUL character" in str(refusal("--pause", "emails", "--reason", "a\x00"))
    assert str(refusal("--reason", "why")) == "--reason goes with --pause QUEUE."
    assert "not allowed with argument" in str(refusal("--pause", "a", "--resume", "b"))
    assert "no database 'nope'" in str(refusal("--database", "nope"))
    assert not PausedQueue.objects.exists()


# --explain


def test_explain_prints_each_reason_on_its_own_line() -> None:
    task = TaskRecordFactory(queue="emails")
    app.pause_queue("emails", reason="SMTP\ndown", by="ops")
    lines = run("--explain", str(task.uuid)).splitlines()
    assert lines[0] == f"Task {task.uuid} (new):"
    assert lines[1].startswith("- Its queue 'emails' was paused by ops ")
    assert lines[1].endswith(": SMTP?down.")
    assert lines[2:] == ["- No live worker serves queue 'emails'."]


def test_explain_json_gives_the_codes() -> None:
    later = timezone.now() + timedelta(hours=1)
    task = TaskRecordFactory(queue="emails", eta=later)
    shown = json.loads(run("--explain", str(task.uuid), "--json"))
    assert (shown["uuid"], shown["status"], shown["blocked"]) == (str(task.uuid), "new", True)
    eta, no_worker = shown["reasons"]
    assert (eta["code"], eta["tasks"]) == ("eta", [])
    assert datetime.fromisoformat(eta["until"]) == later
    assert eta["message"].startswith("It is not due until ")
    assert (no_worker["code"], no_worker["until"]) == ("no_worker", None)


def test_explain_refuses_an_unknown_task_or_a_malformed_uuid() -> None:
    unknown = uuid.uuid4()
    refused = refusal("--explain", str(unknown))
    assert (str(refused), refused.returncode) == (f"No task {unknown} in database 'default'.", 1)
    refused = refusal("--explain", "12345")
    assert str(refused).startswith("'12345' is not a task uuid")
    assert refused.returncode == 1
