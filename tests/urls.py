"""URLs of the test project: the admin, where the qtasks_django admin pages live."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path

urlpatterns = [
    path("admin/", admin.site.urls),
]
