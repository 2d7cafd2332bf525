"""Correlation ids: taken from ``X-Correlation-ID`` or minted, bound to every log line of the
request, stored on the job row, and picked up by the worker that runs the job."""

from __future__ import annotations

import re
import uuid
from typing import Any

import structlog

HEADER = "x-correlation-id"
_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class CorrelationMiddleware:
    """Pure ASGI (not BaseHTTPMiddleware) so streaming responses pass through untouched."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        supplied = dict(scope.get("headers") or []).get(HEADER.encode(), b"").decode("latin-1")
        correlation_id = supplied if _VALID.match(supplied) else uuid.uuid4().hex
        scope.setdefault("state", {})["correlation_id"] = correlation_id

        async def send_with_header(message: Any) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((HEADER.encode(), correlation_id.encode()))
            await send(message)

        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(service="api", correlation_id=correlation_id)
        await self.app(scope, receive, send_with_header)
