"""URLs of the demo app."""

from __future__ import annotations

from django.urls import path

from . import views

app_name = "demo"

urlpatterns = [
    path("", views.index, name="index"),
    path("run/<str:name>/", views.enqueue, name="enqueue"),
    path("tasks/<uuid:task_uuid>/", views.task_detail, name="task-detail"),
]
