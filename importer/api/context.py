"""What the API's request handlers share, built in the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cachetools import TTLCache
from fastapi import Request

from importer.api.hub import EventHub
from importer.models import Company
from importer.protection.counters import Counters
from importer.protection.health import HealthCache
from importer.settings import Settings

if TYPE_CHECKING:
    from importer.api.auth import Authenticator
    from importer.api.stream_slots import StreamSlots


@dataclass
class ApiContext:
    settings: Settings
    db: Any
    redis: Any
    hub: EventHub
    health: HealthCache | None = None
    counters: Counters | None = None
    # key digest → company, so a client's every request is not a Postgres round trip; a revoked
    # key keeps working for at most ``api_key_cache_seconds`` in each API process.
    companies: TTLCache[str, Company] | None = None
    auth: Authenticator | None = None
    # Open event streams per company, counted in Redis across API processes.
    streams: StreamSlots | None = None

    def authenticator(self) -> Authenticator:
        if self.auth is None:
            from importer.api.auth import Authenticator  # here: importer.api.auth imports this module

            self.auth = Authenticator(self.settings, self.db, self.companies)
        return self.auth


def get_context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx
