"""App config of the demo app."""

from __future__ import annotations

from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo app; qtasks_django autodiscovers its ``tasks.py``."""

    name = "example_project.demo"
    label = "demo"
    verbose_name = "QTasks demo"
