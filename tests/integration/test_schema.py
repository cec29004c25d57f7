"""The task table's indexes serve the reads they exist for (PostgreSQL plans)."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.utils import timezone

from qtasks_django.models import TaskRecord

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL query plans"),
]


def _plan(queryset, *, sorts: bool = True) -> str:
    with connection.cursor() as cursor:
        # Without statistics on an empty table any plan would do: rule scans out.
        cursor.execute("SET LOCAL enable_seqscan = off")
        if not sorts:
            # A plan without a Sort exists only if an index gives the order; on an empty
            # table the planner may still prefer a bitmap scan and a sort of two rows.
            cursor.execute("SET LOCAL enable_sort = off")
        return queryset.explain()


def test_the_admin_search_by_task_name_prefix_walks_the_name_index() -> None:
    plan = _plan(TaskRecord.objects.filter(task_name__startswith="app.mail").order_by("-created_at"))

    # Pattern operators make the prefix an index range whatever the collation.
    assert "qtasks_task_name_created_idx" in plan
    assert "~>=~" in plan


def test_a_task_name_filter_walks_the_name_index_in_display_order() -> None:
    plan = _plan(TaskRecord.objects.filter(task_name="app.mail").order_by("-created_at"), sorts=False)

    assert "qtasks_task_name_created_idx" in plan
    assert "Sort" not in plan


def test_children_of_a_task_and_pruning_use_their_partial_indexes() -> None:
    assert "qtasks_task_parent_idx" in _plan(TaskRecord.objects.filter(parent_uuid=uuid.uuid4()))
    assert "qtasks_task_finished_idx" in _plan(TaskRecord.objects.filter(finished_at__lt=timezone.now()))
