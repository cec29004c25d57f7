"""``qtasks_worker`` refuses bad options with argparse's message and a non-zero exit."""

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
        ("--concurrency", "0", "argument --concurrency/-c: must be at least 1"),
        ("--concurrency", "many", "argument --concurrency/-c: invalid positive_int value: 'many'"),
        ("--shutdown-timeout", "-1", "argument --shutdown-timeout: must be >= 0"),
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
