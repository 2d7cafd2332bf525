"""The intake guard: authenticate, then read the body under a size cap, before the app runs.

FastAPI reads and parses a request's body before it runs the route's dependencies, so an
unauthenticated 100 MB body used to be buffered and parsed in full only to be answered 401.
This middleware runs first and, for every ``/v1/`` request:

1. answers 413 at once when ``Content-Length`` declares more than ``api_max_body_bytes``;
2. authenticates from the headers alone (operator token under ``/v1/ops/``, a company API key
   elsewhere) and answers 401/403/429 without receiving a byte of the body; the caller is left
   in the request state for the route's dependency;
3. receives the body, counting the bytes of each ``http.request`` message, and answers 413 as
   soon as the count passes the cap (a chunked body has no Content-Length to trust); the app
   then gets the body replayed from memory, so at most ``api_max_body_bytes`` is ever held.

Hand-written ASGI rather than Starlette's ``RequestBodyLimitMiddleware``: that one checks only
when the app reads, answers in plain text (not the API's error shape), and cannot put
authentication before the read. Pure ASGI (not ``BaseHTTPMiddleware``) so the event streams
pass through untouched.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import Headers

from importer.api.auth import STATE_COMPANY, STATE_OPERATOR, bearer_token
from importer.api.context import ApiContext
from importer.api.problems import error_response
from importer.db.pool import is_transient_db_error
from importer.errors import ApiError
from importer.logs import get_logger

log = get_logger(__name__)

_NO_BODY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class IntakeGuard:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ctx: ApiContext | None = getattr(scope["app"].state, "ctx", None) if "app" in scope else None
        if ctx is None:  # lifespan not run (e.g. a bare test client): nothing to guard with
            await self.app(scope, receive, send)
            return
        limit = ctx.settings.api_max_body_bytes
        headers = Headers(scope=scope)
        declared = _content_length(headers)
        if declared is not None and declared > limit:
            await self._too_large(scope, receive, send, limit)
            return
        path: str = scope.get("path", "")
        if path.startswith("/v1/"):
            try:
                await self._authenticate(ctx, scope, headers)
            except ApiError as exc:
                extra = {} if scope.get("method", "GET") in _NO_BODY_METHODS else {"Connection": "close"}
                response = error_response(exc.status_code, exc.message, code=exc.code, headers={**exc.headers, **extra})
                await response(scope, receive, send)
                return
            except Exception as exc:
                if not is_transient_db_error(exc):
                    raise
                log.warning("auth_dependency_unavailable", error=repr(exc))
                response = error_response(
                    503,
                    "a backing service is unavailable; retry shortly",
                    headers={"Retry-After": str(ctx.settings.unavailable_retry_after)},
                )
                await response(scope, receive, send)
                return
        if scope.get("method", "GET") in _NO_BODY_METHODS:
            await self.app(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away before sending its body: nothing to answer
            if message["type"] != "http.request":
                continue
            body += message.get("body", b"")
            if len(body) > limit:
                await self._too_large(scope, receive, send, limit)
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(bytes(body), receive), send)

    async def _authenticate(self, ctx: ApiContext, scope: Any, headers: Headers) -> None:
        token = bearer_token(headers.get("authorization"))
        client = scope["client"][0] if scope.get("client") else "unknown"
        state = scope.setdefault("state", {})
        auth = ctx.authenticator()
        if scope["path"].startswith("/v1/ops/"):
            auth.operator(token, client)
            state[STATE_OPERATOR] = True
        else:
            state[STATE_COMPANY] = await auth.company(token, client)

    async def _too_large(self, scope: Any, receive: Any, send: Any, limit: int) -> None:
        log.warning("request_body_too_large", path=scope.get("path"), limit=limit)
        response = error_response(
            413, f"request body larger than {limit} bytes", code="body_too_large", headers={"Connection": "close"}
        )
        await response(scope, receive, send)


def _content_length(headers: Headers) -> int | None:
    value = headers.get("content-length")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _replay(body: bytes, receive: Any) -> Any:
    """The buffered body as one message, then the real channel (for disconnect notices)."""
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        message: dict[str, Any] = await receive()
        return message

    return replay
