"""Tasks with flow control: unique tasks, concurrency and rate limits (tests/*/test_flow*.py)."""

from __future__ import annotations

import time

from qtasks_django import shared_task

from .tasks_faults import journal

__all__ = [
    "flow_by_account",
    "flow_journal_by_group",
    "flow_journal_limited",
    "flow_journal_pausable",
    "flow_journal_pausable_limited",
    "flow_journal_plain",
    "flow_journal_rated",
    "flow_limited",
    "flow_plain",
    "flow_rated",
    "flow_rated_by_partner",
    "flow_unique",
    "flow_unique_waiting",
]


@shared_task(name="flow_unique", unique=True)
def flow_unique(tenant_id, full=False):
    return tenant_id


@shared_task(name="flow_unique_waiting", unique=True, unique_while="waiting")
def flow_unique_waiting(tenant_id):
    return tenant_id


@shared_task(name="flow_plain")
def flow_plain(seconds=0.0):
    time.sleep(seconds)
    return "plain"


@shared_task(name="flow_limited", concurrency_limit=2)
def flow_limited(seconds=0.0):
    time.sleep(seconds)
    return "limited"


@shared_task(name="flow_by_account", concurrency_key="acct:{account_id}", concurrency_limit=1)
def flow_by_account(account_id, seconds=0.0):
    time.sleep(seconds)
    return account_id


@shared_task(name="flow_rated", rate_limit="5/s")
def flow_rated():
    return "rated"


@shared_task(name="flow_rated_by_partner", rate_limit="1/h", rate_key="partner:{partner}")
def flow_rated_by_partner(partner):
    return partner


# -- journalling tasks for real workers (tests/e2e/test_flow.py) --------------------------
#
# Each appends ``start <key> <pid> <monotonic> <wall>`` when its body starts and ``done
# ...`` when it ends (the journal of tests/tasks_faults.py, with times): the e2e tests
# compute from them how many ran at once and how many started in any second.

PAUSABLE_QUEUE = "flow_pausable"


def _journal_run(path: str, key: str, seconds: float) -> str:
    _mark(path, "start", key)
    time.sleep(seconds)
    _mark(path, "done", key)
    return key


def _mark(path: str, event: str, key: str) -> None:
    journal(path, event, key, f"{time.monotonic():.6f}", f"{time.time():.6f}")


@shared_task(name="flow_journal_plain")
def flow_journal_plain(path, key, seconds=0.0):
    return _journal_run(path, key, seconds)


@shared_task(name="flow_journal_limited", concurrency_limit=2)
def flow_journal_limited(path, key, seconds=0.0):
    return _journal_run(path, key, seconds)


@shared_task(name="flow_journal_by_group", concurrency_key="group:{group}", concurrency_limit=1)
def flow_journal_by_group(path, key, group, seconds=0.0):
    return _journal_run(path, key, seconds)


@shared_task(name="flow_journal_rated", rate_limit="5/s")
def flow_journal_rated(path, key):
    return _journal_run(path, key, 0.0)


@shared_task(name="flow_journal_pausable", queue=PAUSABLE_QUEUE)
def flow_journal_pausable(path, key, seconds=0.0):
    return _journal_run(path, key, seconds)


@shared_task(name="flow_journal_pausable_limited", queue=PAUSABLE_QUEUE, concurrency_limit=3)
def flow_journal_pausable_limited(path, key, seconds=0.0):
    return _journal_run(path, key, seconds)
