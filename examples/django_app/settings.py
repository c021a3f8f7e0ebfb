"""Settings for the example Django project (read from the environment where it matters).

Provider settings (OPENAI_API_KEY, OPENAI_BASE_URL, ...) are read by rig_sync itself; see
`examples/assistant.py`.
"""

from __future__ import annotations

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "insecure-example-key-change-me")
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1").split(",")]

ROOT_URLCONF = "examples.django_app.urls"
WSGI_APPLICATION = "examples.django_app.wsgi.application"

# A JSON API without sessions, cookies or a database: nothing to install, migrate or protect from CSRF.
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"rig_sync": {"handlers": ["console"], "level": os.environ.get("RIG_LOG_LEVEL", "WARNING")}},
}
