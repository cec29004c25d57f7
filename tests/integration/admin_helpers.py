"""Helpers of the admin's integration tests: staff users with chosen permissions."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import Permission, User
from django.test import Client

#: The admin's own permissions (besides Django's view permission on the task model).
TASK_PERMISSIONS = ("view_task_data", "retry_task", "cancel_task", "run_task_now", "duplicate_task")


def staff_user(*codenames: str) -> User:
    """A staff user (not a superuser) holding ``qtasks_django.<codename>`` for each codename."""
    user = User.objects.create_user(f"staff-{uuid.uuid4().hex[:8]}", password="password", is_staff=True)
    perms = Permission.objects.filter(content_type__app_label="qtasks_django", codename__in=codenames)
    assert sorted(p.codename for p in perms) == sorted(set(codenames)), "unknown permission"
    user.user_permissions.add(*perms)
    return user


def client_for(user: User, *, enforce_csrf_checks: bool = False) -> Client:
    client = Client(enforce_csrf_checks=enforce_csrf_checks)
    client.force_login(user)
    return client


def staff_client(*codenames: str) -> Client:
    """A logged-in client of a new staff user with these permissions."""
    return client_for(staff_user(*codenames))
