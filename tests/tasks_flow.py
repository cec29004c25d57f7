"""Tasks with flow control: unique tasks, concurrency and rate limits (tests/*/test_flow*.py)."""

from __future__ import annotations

import time

from qtasks_django import shared_task

__all__ = [
    "flow_by_account",
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
