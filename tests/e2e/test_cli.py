"""``qtasks_worker`` and ``qtasks_prune`` refuse bad options with argparse's message and a
non-zero exit, and a bad ``QTASKS`` number is a system-check error, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO_ROOT


@pytest.fixture
def worker_env_no_db(tmp_path: Path) -> dict[str, str]:
    # A scratch database: should an option wrongly be accepted, the worker touches nothing real.
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}",
    }


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--concurrency", "0", "argument --concurrency/-c: must be an integer from 1 to 10000, got '0'"),
        (
            "--concurrency",
            "many",
            "argument --concurrency/-c: must be an integer from 1 to 10000, got 'many'",
        ),
        ("--concurrency", "True", "argument --concurrency/-c: must be an integer from 1 to 10000"),
        ("--shutdown-timeout", "-1", "argument --shutdown-timeout: must be a finite number from 0 to"),
        # nan made the idle loop spin a CPU; inf made it exit with an OverflowError.
        ("--poll-interval", "nan", "argument --poll-interval: must be a finite number from 0.01 to"),
        ("--poll-interval", "inf", "argument --poll-interval: must be a finite number from 0.01 to"),
        ("--poll-interval", "0", "argument --poll-interval: must be a finite number from 0.01 to"),
        ("--queues", " , ", "argument --queues/-Q: give at least one queue name"),
        ("--log-level", "LOUD", "argument --log-level: invalid choice: 'LOUD'"),
    ],
)
def test_bad_option_exits_non_zero_with_a_clear_message(worker_env_no_db, option, value, message):
    done = subprocess.run(
        [sys.executable, "manage.py", "qtasks_worker", "--burst", f"{option}={value}"],
        cwd=REPO_ROOT,
        env=worker_env_no_db,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "usage: manage.py qtasks_worker" in done.stderr
    assert "qtasks worker" not in done.stdout  # it never started


def run_manage(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *argv],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("value", ["99999999999d", "99999999999", "3651d"])
def test_prune_refuses_a_retention_beyond_ten_years(worker_env_no_db, value):
    done = run_manage(worker_env_no_db, "qtasks_prune", f"--older-than={value}")

    assert done.returncode == 2, done.stderr
    assert f"argument --older-than: must be at most 3650d (315360000 seconds), got '{value}'" in done.stderr
    assert "Traceback" not in done.stderr


def project_with(tmp_path: Path, env: dict[str, str], source: str) -> dict[str, str]:
    """``env`` for a project whose QTASKS adds the dict ``source`` to the test settings' (a module in ``tmp_path``)."""
    module = tmp_path / "bad_qtasks_settings.py"
    module.write_text(
        f"from tests.settings import *  # noqa: F403\nQTASKS = {{**QTASKS, **{source}}}  # noqa: F405\n"
    )
    path = os.pathsep.join(filter(None, [str(tmp_path), str(REPO_ROOT), env.get("PYTHONPATH")]))
    return {**env, "DJANGO_SETTINGS_MODULE": "bad_qtasks_settings", "PYTHONPATH": path}


@pytest.fixture
def settings_with(tmp_path: Path, worker_env_no_db: dict[str, str]):
    """``settings_with(source)``: the environment of a project whose QTASKS adds the dict ``source``."""
    return lambda source: project_with(tmp_path, worker_env_no_db, source)


@pytest.mark.parametrize("command", [["check"], ["qtasks_worker", "--burst"]])
@pytest.mark.parametrize(
    ("source", "message"),
    [
        # Declared while Django loads the apps, before the checks: this used to fail there,
        # with a traceback blaming the first task.
        (
            '{"DEFAULT_PRIORITY": 1.5}',
            "QTASKS['DEFAULT_PRIORITY'] must be an integer from -2147483648 to 2147483647, got 1.5",
        ),
        ('{"DEFAULT_PRIORITY": True}', "QTASKS['DEFAULT_PRIORITY'] must be an integer"),
        # Passed the checks, then crashed the worker.
        ('{"LEASE_TIMEOUT": float("inf")}', "QTASKS['LEASE_TIMEOUT'] must be a finite number from 0.01 to"),
        ('{"LEASE_TIMEOUT": float("nan")}', "QTASKS['LEASE_TIMEOUT'] must be a finite number from 0.01 to"),
    ],
    ids=["priority-1.5", "priority-True", "lease-inf", "lease-nan"],
)
def test_a_bad_setting_is_a_system_check_error_not_a_traceback(settings_with, command, source, message):
    done = run_manage(settings_with(source), *command)

    assert done.returncode == 1, done.stderr
    assert "SystemCheckError" in done.stderr and "(qtasks_django.E002)" in done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert "qtasks worker" not in done.stdout  # a worker never started


@pytest.mark.django_db(transaction=True)
def test_schedules_run_from_a_shell_enqueues_the_task(tmp_path: Path, worker_env: dict[str, str]):
    from qtasks_django.models import Schedule, TaskRecord

    nightly = '{"task": "scheduled_report", "cron": "0 3 * * *", "args": [7]}'
    env = project_with(tmp_path, worker_env, f'{{"SCHEDULES": {{"nightly": {nightly}}}}}')

    done = run_manage(env, "qtasks_schedules", "--run", "nightly")

    assert done.returncode == 0, done.stderr
    (task,) = TaskRecord.objects.filter(schedule=Schedule.objects.get(name="nightly"))
    assert f"Enqueued task {task.uuid} (scheduled_report) for schedule 'nightly'." in done.stdout
    assert (task.args, task.scheduled_for) == ([7], None)

    unknown = run_manage(env, "qtasks_schedules", "--run", "nightlly")
    assert unknown.returncode == 1
    assert "CommandError: No schedule named 'nightlly'. Known: 'nightly'." in unknown.stderr
    assert "Traceback" not in unknown.stderr
    bad = run_manage(env, "qtasks_schedules", "--next", "0")
    assert bad.returncode == 2 and "argument --next: must be an integer from 1 to 1000, got '0'" in bad.stderr


@pytest.mark.parametrize("command", [["check"], ["qtasks_worker", "--burst"], ["qtasks_schedules"]])
def test_a_bad_schedule_is_a_system_check_error_before_anything_runs(settings_with, command):
    done = run_manage(
        settings_with('{"SCHEDULES": {"x": {"task": "scheduled_tick", "cron": "61 * * * *"}}}'), *command
    )

    assert done.returncode == 1, done.stderr
    assert (
        "(qtasks_django.E013) Schedule 'x': '61 * * * *' is not a valid cron expression: Bad minute"
        in done.stderr
    )
    assert "Traceback" not in done.stderr
