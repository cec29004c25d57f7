"""Settings of the benchmark: the app and the bench tasks on PostgreSQL, quiet logs.

``DATABASE_URL`` chooses the database (default ``qtasks_bench`` on the local server).
"""

from __future__ import annotations

import environ

env = environ.Env()
SECRET_KEY = "bench-only"  # the benchmark serves no requests
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "qtasks_django", "bench"]
DATABASES = {"default": env.db_url("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/qtasks_bench")}
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
QTASKS: dict[str, object] = {}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
