from __future__ import annotations

from django.apps import AppConfig


class QTasksConfig(AppConfig):
    name = "qtasks_django"
    label = "qtasks_django"
    verbose_name = "QTasks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.utils.module_loading import autodiscover_modules

        from . import checks  # noqa: F401  (registers the system checks)

        # Import every installed app's tasks.py. autodiscover_modules re-raises
        # errors raised inside a tasks.py; only a missing module is skipped.
        autodiscover_modules("tasks")
