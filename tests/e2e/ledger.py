"""The ledger of a fault test: what happened to its tasks, by the record and by the tasks' journal.

It counts what the issue's hidden fault suite counts:

* **lost**: a task that has not ended and is neither visibly ``new`` nor ``process``
  under a live lease (or whose row is gone);
* **stranded**: a task in ``process`` whose lease expired more than a rescue sweep ago;
* **duplicated**: a task whose body ran to completion more than once (the journal
  written by tests/tasks_faults.py says so) though it was never rescued;
* **reruns**: the same for a rescued task, which at-least-once allows;
* **time to recovery**: seconds from the fault until the affected tasks have ended.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

FINAL = ("success", "error", "cancel")


class Journal:
    """The O_APPEND event file the tasks of tests/tasks_faults.py write (one per test)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.touch()

    def __str__(self) -> str:
        return str(self.path)

    def events(self) -> list[tuple[str, str, int]]:
        """``(event, key, pid)`` of every complete line, in the order written."""
        rows = []
        for line in self.path.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3:
                rows.append((parts[0], parts[1], int(parts[2])))
        return rows

    def count(self, event: str) -> Counter[str]:
        """How many times each key logged ``event``."""
        return Counter(key for name, key, _pid in self.events() if name == event)

    def pids(self, event: str, key: object) -> list[int]:
        return [pid for name, k, pid in self.events() if name == event and k == str(key)]


@dataclass
class Ledger:
    """What happened to a set of tasks, as the record and the journal tell it."""

    total: int
    statuses: Counter[str]
    lost: list[str] = field(default_factory=list)
    stranded: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    reruns: list[str] = field(default_factory=list)
    phantoms: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    """Key → last traceback line of tasks that ended error or cancel."""
    recovery: float | None = None

    @property
    def ended(self) -> int:
        return sum(self.statuses[s] for s in FINAL)

    def __str__(self) -> str:
        recovery = "" if self.recovery is None else f" recovery={self.recovery:.2f}s"
        return (
            f"total={self.total} statuses={dict(self.statuses)} lost={len(self.lost)} "
            f"stranded={len(self.stranded)} duplicated={len(self.duplicated)} "
            f"reruns={len(self.reruns)} phantoms={len(self.phantoms)}{recovery}"
        )

    def assert_clean(self, *, reruns_allowed: bool = False) -> None:
        """Every task ended success exactly once (at least once where a rescue allowed a rerun)."""
        problems = {
            "lost": self.lost,
            "stranded": self.stranded,
            "duplicated": self.duplicated,
            "phantoms (success with no completed run)": self.phantoms,
        }
        if not reruns_allowed:
            problems["reruns"] = self.reruns
        found = {name: keys[:10] for name, keys in problems.items() if keys}
        assert not found, f"{self}: {found}"
        assert self.statuses == Counter({"success": self.total}), (
            f"{self}: {dict(list(self.failed.items())[:5])}"
        )


def audit(tasks: dict[str, Any], journal: Journal, *, using: str = "default") -> Ledger:
    """Build the ledger of ``tasks`` (key → uuid) from the database and the journal.

    A body that completed more than once is a *rerun* when its row was rescued (the
    at-least-once guarantee allows it) and a *duplicate* otherwise.
    """
    from django.conf import settings as django_settings
    from django.utils import timezone

    from qtasks_django.models import TaskRecord

    rows = {
        str(r["uuid"]): r
        for r in TaskRecord.objects.using(using)
        .filter(pk__in=list(tasks.values()))
        .values("uuid", "status", "lease_expires_at", "rescues", "traceback", "cancel_reason")
    }
    done = journal.count("done")
    now = timezone.now()
    # A lease may lapse a moment before the next sweep requeues it: only past that is it stranded.
    sweep = timedelta(seconds=django_settings.QTASKS.get("RESCUE_INTERVAL", 15) + 1)
    ledger = Ledger(total=len(tasks), statuses=Counter())
    for key, uuid in tasks.items():
        row = rows.get(str(uuid))
        status = row["status"] if row else "missing"
        ledger.statuses[status] += 1
        if row is None:
            ledger.lost.append(key)
        elif status == "process" and row["lease_expires_at"] is None:
            ledger.lost.append(key)
        elif status == "process" and row["lease_expires_at"] < now - sweep:
            ledger.stranded.append(key)
        elif status not in (*FINAL, "new", "process"):
            ledger.lost.append(key)
        if done[key] > 1:
            (ledger.reruns if row and row["rescues"] else ledger.duplicated).append(key)
        if status == "success" and done[key] == 0:
            ledger.phantoms.append(key)
        if status in ("error", "cancel"):
            why = (row["traceback"].strip().splitlines() or [row["cancel_reason"]])[-1]
            ledger.failed[key] = f"rescues={row['rescues']} {why}"
    return ledger


def wait_ended(
    tasks: dict[str, Any],
    journal: Journal,
    *,
    timeout: float,
    using: str = "default",
    since: float | None = None,
    check: Callable[[], None] | None = None,
) -> Ledger:
    """Wait until every task has ended; return the ledger, its ``recovery`` counted from ``since``.

    Fails with the ledger (what is lost, stranded, ...) when ``timeout`` runs out.
    ``check`` runs on every poll (e.g. to fail at once when a worker died).
    """
    from qtasks_django.models import TaskRecord

    deadline = time.monotonic() + timeout
    uuids = list(tasks.values())
    while True:
        if check:
            check()
        pending = TaskRecord.objects.using(using).filter(pk__in=uuids).exclude(status__in=FINAL).count()
        if not pending:
            break
        if time.monotonic() > deadline:
            pytest.fail(f"{pending} task(s) not ended after {timeout}s: {audit(tasks, journal, using=using)}")
        time.sleep(0.1)
    ended_at = time.monotonic()
    ledger = audit(tasks, journal, using=using)
    if since is not None:
        ledger.recovery = ended_at - since
    return ledger


def report(record_property: Callable[[str, object], None], ledger: Ledger, **measures: object) -> None:
    """Keep the ledger and any measures with the test's JUnit record (and print them for ``-s``)."""
    record_property("ledger", str(ledger))
    for name, value in measures.items():
        record_property(name, value)
    extra = " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in measures.items())
    print(f"\n[faults] {ledger} {extra}".rstrip())
