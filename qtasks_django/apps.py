from __future__ import annotations

from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class QTasksConfig(AppConfig):
    name = "qtasks_django"
    label = "qtasks_django"
    verbose_name = "QTasks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported once the apps are ready, as Django asks: importing it registers the checks.
        from . import checks  # noqa: F401

        # Import every installed app's tasks.py. autodiscover_modules re-raises
        # errors raised inside a tasks.py; only a missing module is skipped.
        autodiscover_modules("tasks")
