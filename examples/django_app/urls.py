"""URL routes of the example Django project."""

from __future__ import annotations

from django.urls import path  # type: ignore[import-untyped]

from . import views

urlpatterns = [
    path("ask", views.ask),
    path("stream", views.stream),
    path("fan-out", views.fan_out),
]
