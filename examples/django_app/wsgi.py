"""WSGI entry point: `gunicorn --workers 4 --threads 8 examples.django_app.wsgi` (from the repository root)."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application  # type: ignore[import-untyped]

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_app.settings")

application = get_wsgi_application()
