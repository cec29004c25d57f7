"""Wake-ups: an idle worker starts new and delayed tasks at once, and polls when Redis is gone.

Workers here poll rarely (``--poll-interval`` of several seconds), so a start within a
fraction of a second can only come from a notification (or an eta timer), not a poll.
"""

from __future__ import annotations

import statistics
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from qtasks_django.models import TaskRecord
from qtasks_django.notifiers import get_notifier
from qtasks_django.tasks.app import get_app
from tests.integration.helpers import qtasks_settings

from .faults import (  # noqa: F401 (fixtures)
    Fleet,
    fleet_fixture,
    journal_fixture,
    wait_status,
    wakeup_latencies,
)
from .ledger import Journal, report, wait_ended
from .servers import (
    PrivateRedis,
    private_redis_fixture,  # noqa: F401 (fixtures)
)

pytestmark = pytest.mark.django_db(transaction=True)

SLOW_POLL = 4.0  # seconds between a worker's polls in these tests
PROMPT = 0.5  # a start this soon after enqueue (or eta) was woken, not polled


def test_idle_worker_starts_a_new_task_within_milliseconds(
    fleet: Fleet, journal: Journal, record_property
) -> None:
    if not get_notifier().supports_listen:
        pytest.skip(f"{get_notifier().describe()} has no wake-ups: workers poll")
    fleet.start("--poll-interval", str(SLOW_POLL))
    time.sleep(0.5)  # idle, listening

    samples = wakeup_latencies(journal, count=5)

    assert statistics.median(samples) < PROMPT, samples
    record_property("wakeup_latencies", samples)
    print(f"\n[faults] wake-up latencies ({get_notifier().describe()}): {[round(s, 3) for s in samples]}")
    fleet.stop_all()


def test_redis_going_away_falls_back_to_polling_and_wakeups_resume(
    fleet: Fleet, journal: Journal, private_redis: PrivateRedis, record_property
) -> None:
    notifier = {
        "BACKEND": "qtasks_django.notifiers.redis.RedisNotifier",
        "OPTIONS": {"url": private_redis.url},
    }
    env = {"QTASKS_TEST_NOTIFIER": "redis", "REDIS_URL": private_redis.url}
    tasks: dict[str, object] = {}
    with qtasks_settings(NOTIFIER=notifier):
        worker = fleet.start("--poll-interval", str(SLOW_POLL), env=env)
        time.sleep(0.5)
        up = wakeup_latencies(journal, prefix="up", into=tasks)
        assert statistics.median(up) < PROMPT, up

        private_redis.stop()
        down = wakeup_latencies(
            journal, prefix="down", into=tasks, count=2
        )  # still run: the worker polls the database
        assert all(s < SLOW_POLL + 2 for s in down), down
        assert "lost Redis" in worker.stderr(), worker.stderr()

        private_redis.start()
        time.sleep(SLOW_POLL + 0.5)  # the listener reconnects on its next wait
        back = wakeup_latencies(journal, prefix="back", into=tasks)
        assert statistics.median(back) < PROMPT, back

    fleet.check_alive()
    ledger = wait_ended(tasks, journal, timeout=5)
    ledger.assert_clean()
    report(record_property, ledger, latency_up=max(up), latency_down=max(down), latency_back=max(back))
    fleet.stop_all()


def test_delayed_tasks_start_on_time_not_at_the_next_poll(fleet: Fleet, journal: Journal) -> None:
    app = get_app()
    fleet.start("--poll-interval", str(SLOW_POLL))
    time.sleep(0.5)

    # Due after the worker's next poll at the latest: it must then wait for the eta itself.
    now = timezone.now()
    soon = now + timedelta(seconds=SLOW_POLL + 1.5)
    delayed = {
        "countdown": app.add_task("fault_job", str(journal), "countdown", countdown=SLOW_POLL + 0.5).uuid,
        "eta": app.add_task("fault_job", str(journal), "eta", eta=soon).uuid,
    }
    if get_notifier().supports_listen:  # a wake-up tells the idle worker about it at once
        delayed["short"] = app.add_task("fault_job", str(journal), "short", countdown=1).uuid
    assert TaskRecord.objects.get(pk=delayed["eta"]).eta == soon

    for key, uuid in delayed.items():
        record = wait_status(uuid, ["success"], timeout=SLOW_POLL + 10, what=f"delayed task {key}")
        late = (record.started_at - record.eta).total_seconds()
        assert 0 <= late < PROMPT, (key, late)
    fleet.stop_all()
