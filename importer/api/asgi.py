"""The app factory uvicorn imports in each process when the API runs as several processes.

With ``--processes N`` uvicorn starts N interpreters sharing one listening socket; each builds
its own app (its own pools, event hub and caches) from the environment, and logs as JSON.
"""

from __future__ import annotations

from fastapi import FastAPI

from importer.api.app import create_app
from importer.logs import configure_logging
from importer.settings import get_settings


def app_factory() -> FastAPI:
    settings = get_settings()
    configure_logging(settings.log_level, service="api")
    return create_app(settings)
