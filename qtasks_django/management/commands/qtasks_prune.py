"""``python manage.py qtasks_prune``: delete finished tasks older than a retention, in batches."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand

from qtasks_django.conf import DELAY, Bounds
from qtasks_django.limits import DURATION_MAX
from qtasks_django.management.options import integer_in
from qtasks_django.queue.pruning import (
    DEFAULT_BATCH_SIZE,
    PRUNABLE_STATUSES,
    Pruner,
    PruneResult,
    default_retention,
    parse_duration,
    validate_statuses,
)

#: Rows per batch: one transaction deletes them and their progress items and log lines.
BATCH_SIZE = Bounds(1, 100_000, integer=True)


def duration(value: str) -> Any:
    try:
        retention = parse_duration(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    except OverflowError:  # beyond what a timedelta holds
        retention = None
    if retention is None or DELAY.refuses(retention.total_seconds()):
        raise argparse.ArgumentTypeError(
            f"must be at most {DURATION_MAX // 86400}d ({DURATION_MAX} seconds), got {value!r}"
        )
    return retention


def status_list(value: str) -> tuple[str, ...]:
    try:
        return validate_statuses(value.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


class Command(BaseCommand):
    help = "Delete finished tasks (with their progress items and logs) older than a retention, in batches."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--older-than",
            type=duration,
            default=None,
            help="Retention: 7d, 12h, 30m, 45s or seconds (default QTASKS['PRUNE_AFTER'], 7 days).",
        )
        parser.add_argument(
            "--status",
            type=status_list,
            default=PRUNABLE_STATUSES,
            help=f"Comma-separated statuses to prune (default {','.join(PRUNABLE_STATUSES)}; never new or process).",
        )
        parser.add_argument(
            "--batch-size",
            type=integer_in(BATCH_SIZE),
            default=DEFAULT_BATCH_SIZE,
            help=f"Rows deleted per transaction (default {DEFAULT_BATCH_SIZE}).",
        )
        parser.add_argument("--queue", default=None, help="Only tasks of this queue.")
        parser.add_argument("--task-name", default=None, help="Only tasks with this name.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be deleted; delete nothing."
        )
        parser.add_argument("--database", default="default", help="Database alias (default 'default').")

    def handle(self, *args: Any, **options: Any) -> None:
        retention = options["older_than"] if options["older_than"] is not None else default_retention()
        pruner = Pruner.older_than(
            retention,
            statuses=options["status"],
            batch_size=options["batch_size"],
            queue=options["queue"],
            task_name=options["task_name"],
            dry_run=options["dry_run"],
            using=options["database"],
        )
        verb = "Would delete" if pruner.dry_run else "Deleting"
        self.stdout.write(
            f"{verb} {', '.join(pruner.statuses)} tasks that finished before {pruner.cutoff:%Y-%m-%d %H:%M:%S %Z}"
        )
        result = pruner.run(on_batch=self._batch_line if options["verbosity"] >= 2 else None)
        self.stdout.write(summary(result))

    def _batch_line(self, result: PruneResult) -> None:
        self.stdout.write(f"  batch {result.batches}: {result.tasks} task(s) so far")


def summary(result: PruneResult) -> str:
    """Return the closing line: counts of tasks, progress items, log lines and batches."""
    verb = "Would delete" if result.dry_run else "Deleted"
    line = (
        f"{verb} {result.tasks} task(s), {result.progress_items} progress item(s) and "
        f"{result.log_lines} log line(s) in {result.batches} batch(es)."
    )
    if result.kept_retry_attempts:
        line += f" Kept {result.kept_retry_attempts} retry attempt(s) whose last attempt has not finished."
    if result.kept_in_rate_window:
        line += f" Kept {result.kept_in_rate_window} rate-limited task(s) still counted by their rate window."
    return line
