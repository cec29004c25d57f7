"""The basic admin: a staff user sees tasks with status, arguments, result and traceback."""

from __future__ import annotations

import pytest
from django.urls import reverse

from qtasks_django.models import RegisteredTask, TaskRecord, WorkerRecord

pytestmark = pytest.mark.django_db


@pytest.fixture
def task_row() -> TaskRecord:
    return TaskRecord.objects.create(
        task_name="add",
        status="error",
        args=[1, "<script>alert(1)</script>"],
        kwargs={"who": "Ada"},
        returning={"total": 3},
        traceback="Traceback ...\nValueError: <b>bad</b>",
    )


def test_changelist_lists_tasks_with_status(admin_client, task_row: TaskRecord) -> None:
    response = admin_client.get(reverse("admin:qtasks_django_taskrecord_changelist"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "add" in body
    assert "Error" in body  # the status label


def test_detail_shows_args_result_and_escaped_traceback(admin_client, task_row: TaskRecord) -> None:
    response = admin_client.get(reverse("admin:qtasks_django_taskrecord_change", args=[task_row.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<script>alert(1)</script>" not in body
    assert "&quot;total&quot;: 3" in body or '"total": 3' in body
    assert "ValueError: &lt;b&gt;bad&lt;/b&gt;" in body


def test_status_filter_and_search(admin_client, task_row: TaskRecord) -> None:
    other = TaskRecord.objects.create(task_name="other", status="success")
    url = reverse("admin:qtasks_django_taskrecord_changelist")
    filtered = admin_client.get(url, {"status__exact": "success"}).context["cl"].result_list
    assert list(filtered) == [other]
    searched = admin_client.get(url, {"q": "other"}).context["cl"].result_list
    assert list(searched) == [other]


def test_records_are_read_only(admin_client, task_row: TaskRecord) -> None:
    assert admin_client.get(reverse("admin:qtasks_django_taskrecord_add")).status_code == 403
    delete = admin_client.post(reverse("admin:qtasks_django_taskrecord_delete", args=[task_row.pk]), {"post": "yes"})
    assert delete.status_code == 403
    assert TaskRecord.objects.filter(pk=task_row.pk).exists()


def test_anonymous_user_is_sent_to_login(client, task_row: TaskRecord) -> None:
    response = client.get(reverse("admin:qtasks_django_taskrecord_change", args=[task_row.pk]))
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_workers_and_registered_tasks_pages(admin_client) -> None:
    WorkerRecord.objects.create(id="w-1", host="h", pid=1, concurrency=2, queues=["default"])
    RegisteredTask.objects.create(name="add", func="tests.tasks.add")
    workers = admin_client.get(reverse("admin:qtasks_django_workerrecord_changelist")).content.decode()
    registered = admin_client.get(reverse("admin:qtasks_django_registeredtask_changelist")).content.decode()
    assert "w-1" in workers
    assert "tests.tasks.add" in registered
