"""JSON request bodies parsed strictly: a repeated key is an error, not "the last one wins".

``{"store_id": "a", "store_id": "b"}`` is valid JSON to ``json.loads`` and means whatever the
parser keeps; two parsers in a request's path (a gateway, us) may keep different ones. The
route class below swaps the request FastAPI parses for one whose ``json()`` refuses repeated
keys, and refuses bodies that are not JSON (415) instead of letting them fail validation with
a confusing 422. Raising ``JSONDecodeError`` keeps FastAPI's own path for malformed JSON; the
app's handler tells a repeated key apart by its message and answers 400 ``duplicate_json_key``.
"""

from __future__ import annotations

import email.message
import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from importer.errors import ApiError

DUPLICATE_KEY_PREFIX = "duplicate key "


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def loads_strict(raw: bytes | str) -> Any:
    """``json.loads`` that raises ``JSONDecodeError`` ("duplicate key 'k'") on a repeated key."""
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as exc:
        raise json.JSONDecodeError(f"{DUPLICATE_KEY_PREFIX}{str(exc)[:100]!r}", text, 0) from None


class StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = loads_strict(body)
            except UnicodeDecodeError as exc:
                raise json.JSONDecodeError("body is not UTF-8", "", 0) from exc
        return self._json


def _is_json(content_type: str) -> bool:
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


class StrictJsonRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        expects_body = self.body_field is not None

        async def strict_handler(request: Request) -> Response:
            strict = StrictJsonRequest(request.scope, request.receive)
            if expects_body and not _is_json(request.headers.get("content-type", "")) and await strict.body():
                raise ApiError(
                    415,
                    "the request body must be JSON (Content-Type: application/json)",
                    code="unsupported_media_type",
                )
            return await handler(strict)

        return strict_handler
