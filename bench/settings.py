"""Minimal settings for bench/run.py: the app, a PostgreSQL database, quiet logs."""

from __future__ import annotations

import environ

env = environ.Env()
SECRET_KEY = "bench-only"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "qtasks_django", "bench"]
DATABASES = {"default": env.db_url("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/qtasks_bench")}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGGING = {"version": 1, "disable_existing_loggers": False, "loggers": {"qtasks_django": {"level": "ERROR"}}}
