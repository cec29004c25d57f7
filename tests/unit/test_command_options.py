"""The commands' numeric options: every hostile number is a usage error naming the option.

argparse is driven directly (no process, no database): ``CommandParser`` raises
``CommandError`` where the command line would print the usage and exit with status 2.
"""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from qtasks_django.management.commands import qtasks_prune, qtasks_schedules, qtasks_worker

HOSTILE = ["nan", "NaN", "inf", "-inf", "1e999", "-1", "0x10", "²", "1.5e400", "99999999999999999999", ""]


def parse(command, *argv: str):
    return command.Command().create_parser("manage.py", command.__name__.rsplit(".", 1)[1]).parse_args(argv)


def refusal(command, *argv: str) -> str:
    with pytest.raises(CommandError) as refused:
        parse(command, *argv)
    return str(refused.value)


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize(
    ("option", "shown"),
    [
        ("--concurrency", "--concurrency/-c"),
        ("--processes", "--processes/-P"),
        ("--shutdown-timeout", "--shutdown-timeout"),
        ("--poll-interval", "--poll-interval"),
    ],
)
def test_worker_numeric_options_refuse_hostile_values(option, shown, value) -> None:
    message = refusal(qtasks_worker, f"{option}={value}")
    assert f"argument {shown}: must be" in message and repr(value) in message


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--poll-interval=0"], "must be a finite number from 0.01 to 315360000 seconds, got '0'"),
        (["--poll-interval=0.001"], "must be a finite number from 0.01 to 315360000 seconds"),
        (["--shutdown-timeout=315360001"], "must be a finite number from 0 to 315360000 seconds"),
        (["--concurrency=0"], "must be an integer from 1 to 10000, got '0'"),
        (["--concurrency=10001"], "must be an integer from 1 to 10000"),
        (["--concurrency=2.5"], "must be an integer from 1 to 10000, got '2.5'"),
        (["--processes=1025"], "must be an integer from 1 to 1024"),
    ],
)
def test_worker_options_name_their_range(argv, message) -> None:
    assert message in refusal(qtasks_worker, *argv)


def test_worker_options_within_range_are_read_as_numbers() -> None:
    options = parse(
        qtasks_worker, "--concurrency=10000", "-P", "2", "--shutdown-timeout=0", "--poll-interval=0.01"
    )
    assert (options.concurrency, options.processes) == (10_000, 2)
    assert (options.shutdown_timeout, options.poll_interval) == (0.0, 0.01)


@pytest.mark.parametrize(
    "value", ["99999999999d", "99999999999", "3651d", "1e999", "nan", "inf", "-1d", "1.5e400h", "²d"]
)
def test_prune_refuses_a_retention_it_cannot_compute(value) -> None:
    message = refusal(qtasks_prune, f"--older-than={value}")
    assert "argument --older-than:" in message and repr(value) in message


def test_prune_accepts_retentions_up_to_ten_years() -> None:
    assert parse(qtasks_prune, "--older-than=3650d").older_than.days == 3650
    assert parse(qtasks_prune, "--older-than=0").older_than.total_seconds() == 0


@pytest.mark.parametrize("value", [*HOSTILE, "100001", "0"])
def test_prune_batch_size_refuses_hostile_values(value) -> None:
    message = refusal(qtasks_prune, f"--batch-size={value}")
    assert "argument --batch-size: must be an integer from 1 to 100000" in message


def test_the_worker_refuses_bad_settings_even_when_checks_are_skipped() -> None:
    with override_settings(QTASKS={"LEASE_TIMEOUT": float("nan")}):
        with pytest.raises(CommandError, match=r"QTASKS\['LEASE_TIMEOUT'\] must be a finite number"):
            call_command("qtasks_worker", "--burst", skip_checks=True)


@pytest.mark.parametrize("value", [*HOSTILE, "1001", "0", "2.5"])
def test_schedules_next_refuses_hostile_values(value) -> None:
    message = refusal(qtasks_schedules, f"--next={value}")
    assert f"argument --next: must be an integer from 1 to 1000, got {value!r}" in message


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "argument --run: give a schedule name"),
        ("   ", "argument --run: give a schedule name"),
        # PostgreSQL refuses a NUL in a query parameter: it would be a crash, not an answer.
        ("a\x00b", "argument --run: a schedule name holds no NUL character, got 'a\\x00b'"),
        ("x" * 201, "argument --run: a schedule name has at most 200 characters"),
    ],
)
def test_schedules_run_refuses_a_name_no_schedule_can_have(value, message) -> None:
    assert message in refusal(qtasks_schedules, f"--run={value}")


def test_schedules_database_must_be_a_configured_alias() -> None:
    assert "argument --database: no database 'nope' (known: default" in refusal(
        qtasks_schedules, "--database=nope"
    )


def test_schedules_options_within_range_are_read() -> None:
    options = parse(qtasks_schedules, "--next=1000", "--run", "x" * 200, "--json", "--no-sync")
    assert (options.next, options.run, options.json, options.no_sync) == (1000, "x" * 200, True, True)
    assert parse(qtasks_schedules).next == 0 and parse(qtasks_schedules).run is None
