"""Delayed tasks in the admin: the eta column, the waiting/delayed filter the dashboard's
tiles lead to (walking an index in display order), and the dashboard's row on the admin index."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.admin import site
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags

from qtasks_django.admin.index import INDEX_TEMPLATE
from qtasks_django.models import TaskRecord
from tests.factories import TaskRecordFactory
from tests.integration.admin_helpers import staff_client

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:qtasks_django_taskrecord_changelist")
DASHBOARD = reverse("admin:qtasks_django_taskrecord_dashboard")


def listed(client, **params) -> set[object]:
    response = client.get(CHANGELIST, params)
    assert response.status_code == 200
    return {task.pk for task in response.context["cl"].result_list}


@pytest.fixture
def new_tasks() -> dict[str, TaskRecord]:
    now = timezone.now()
    return {
        "due": TaskRecordFactory(created_at=now - timedelta(minutes=2)),
        "delayed": TaskRecordFactory(created_at=now, eta=now + timedelta(minutes=5, seconds=30)),
        "was_delayed": TaskRecordFactory(
            created_at=now - timedelta(hours=1), eta=now - timedelta(minutes=1), task_name="late"
        ),
        "done": TaskRecordFactory(succeeded=True, eta=now + timedelta(hours=1)),
    }


class TestEtaColumn:
    def test_a_delayed_task_shows_how_far_ahead_its_eta_is(self, admin_client, new_tasks) -> None:
        response = admin_client.get(CHANGELIST)
        rows = {row.pk: row for row in response.context["cl"].result_list}
        admin = response.context["cl"].model_admin

        ahead = admin.eta_column(rows[new_tasks["delayed"].pk])
        assert "in 5 min" in ahead and 'class="qtasks-eta-ahead"' in ahead
        assert "column-eta_column" in response.content.decode()

    def test_a_passed_eta_shows_as_a_time_and_a_task_due_at_once_shows_none(
        self, admin_client, new_tasks
    ) -> None:
        admin = admin_client.get(CHANGELIST).context["cl"].model_admin
        was_delayed = new_tasks["was_delayed"]
        local = timezone.localtime(was_delayed.eta).strftime("%Y-%m-%d %H:%M:%S")

        assert strip_tags(admin.eta_column(was_delayed)) == local
        assert admin.eta_column(new_tasks["due"]) == "-"


class TestWaitingOrDelayed:
    def test_waiting_lists_new_tasks_due_now_and_delayed_those_whose_eta_is_ahead(
        self, admin_client, new_tasks
    ) -> None:
        assert listed(admin_client, due="now") == {new_tasks["due"].pk, new_tasks["was_delayed"].pk}
        assert listed(admin_client, due="later") == {new_tasks["delayed"].pk}
        assert len(listed(admin_client)) == 4

    def test_the_dashboard_tiles_lead_to_the_waiting_and_the_delayed_tasks(
        self, admin_client, new_tasks
    ) -> None:
        body = admin_client.get(DASHBOARD).content.decode()

        assert f'id="tile-waiting" href="{CHANGELIST}?due=now"' in body
        assert f'id="tile-delayed" href="{CHANGELIST}?due=later"' in body

    @pytest.mark.postgres
    @pytest.mark.parametrize("due", ["now", "later"])
    def test_each_walks_the_status_index_in_display_order_like_the_status_filter(
        self, admin_client, due
    ) -> None:
        TaskRecordFactory.create_batch(3)
        plan = list_plan(admin_client, due=due)
        # Only new rows are read: the status index in display order, or the ready rows'
        # partial index (the queue's backlog), whichever the table's statistics favour...
        assert re.search(r"Index Scan using qtasks_task_(status|ready)_idx", plan), plan
        # ...exactly as for ``status = 'new'`` alone, the eta checked on each row read.
        assert plan_shape(plan) == plan_shape(list_plan(admin_client, status__exact="new"))


def list_plan(client, **params) -> str:
    """PostgreSQL's plan for the list's page, as on a big table (no sequential scan)."""
    changelist = client.get(CHANGELIST, params).context["cl"]
    sql, sql_params = changelist.queryset.query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        # On a small table the planner reads it whole; show it the plan a big one gets.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN (COSTS OFF) {sql} LIMIT 51", sql_params)
        return "\n".join(row[0] for row in cursor.fetchall())


def plan_shape(plan: str) -> list[str]:
    """The plan's nodes, without the conditions they check."""
    return [line for line in plan.splitlines() if "Filter:" not in line and "Cond:" not in line]


class TestIndexLink:
    def test_the_admin_index_shows_the_dashboard_in_the_qtasks_block(self, admin_client) -> None:
        assert site.index_template == INDEX_TEMPLATE
        body = admin_client.get(reverse("admin:index")).content.decode()
        block = body[body.index('class="app-qtasks_django module') :]
        block = block[: block.index("</table>")]
        assert f'<a href="{DASHBOARD}">Dashboard</a>' in block
        # The models are all still there, after it.
        assert block.index("Dashboard") < block.index(">Tasks<")

    def test_only_a_user_who_may_view_tasks_sees_it(self) -> None:
        assert DASHBOARD not in staff_client("view_workerrecord").get(reverse("admin:index")).content.decode()
        assert DASHBOARD in staff_client("view_taskrecord").get(reverse("admin:index")).content.decode()
