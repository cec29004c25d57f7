"""URLs of the demo app."""

from __future__ import annotations

from django.urls import path

from . import views

app_name = "demo"

urlpatterns = [
    path("", views.index, name="index"),
    path("run/<str:name>/", views.enqueue, name="enqueue"),
    path("transaction/", views.enqueue_in_transaction, name="transaction"),
    path("wait/", views.wait_for_result, name="wait"),
    path("pause/", views.pause_or_resume, name="pause"),
    path("tasks/<uuid:task_uuid>/", views.task_status_page, name="task-status"),
    path("tasks/<uuid:task_uuid>/json/", views.task_status_json, name="task-status-json"),
    path("tasks/<uuid:task_uuid>/cancel/", views.cancel, name="task-cancel"),
]
