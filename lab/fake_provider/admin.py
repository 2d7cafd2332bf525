"""The control surface a test or drill uses: make stores, read expectations, inject faults, count.

Admin requests are never rate limited, faulted or counted: they are the observer, not the load.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from lab.fake_provider.catalog import DEFAULT_EXPECTED_PER_PAGE, StoreSpec, expected_counts, expected_product
from lab.fake_provider.faults import (
    DEFAULT_BOMB_BYTES,
    DEFAULT_TRICKLE_BYTES_PER_S,
    MAX_BOMB_BYTES,
    Delivery,
    FaultRule,
)
from lab.fake_provider.state import state_of
from lab.fake_provider.stats import select_requests
from lab.fake_provider.stores import MAX_LATENCY_MS, MAX_SEED, StoreRequest, store_summary, validation_message

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)

EXPECTED_CHUNK = 500  # products per streamed chunk; the loop gets a turn between chunks


class AdminError(Exception):
    """Rendered as ``{"error", "message"[, "details"]}`` with its status by the app."""

    def __init__(self, status: int, code: str, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return JSONResponse(body, status_code=self.status)


class FaultRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    store_id: str | None = None
    error_rate: float = Field(0.0, ge=0.0, le=1.0)
    error_status: int = Field(500, ge=400, le=599)
    latency_ms: int = Field(0, ge=0, le=MAX_LATENCY_MS)
    outage: bool = False
    apply_to_images: bool = False
    seed: int = Field(0, ge=0, le=MAX_SEED)
    # delivery faults and moved image URLs (lab/fake_provider/faults.py)
    delivery: Delivery = "normal"
    bomb_bytes: int = Field(DEFAULT_BOMB_BYTES, ge=1, le=MAX_BOMB_BYTES)
    trickle_bytes_per_s: int = Field(DEFAULT_TRICKLE_BYTES_PER_S, ge=1, le=1_000_000)
    image_base_url: str | None = Field(None, pattern=r"^[A-Za-z][A-Za-z0-9+.-]*://[^/\s]+$", max_length=2_000)


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AdminError(400, "invalid_json", f"request body is not JSON: {exc}") from exc


def _validate(model: type[M], data: Any) -> M:
    if not isinstance(data, dict):
        raise AdminError(400, "invalid_json", "request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        message, details = validation_message(exc)
        raise AdminError(422, "invalid_request", message, details) from exc


def _store(request: Request, store_id: str) -> StoreSpec:
    spec = state_of(request).stores.get(store_id)
    if spec is None:
        raise AdminError(404, "not_found", f"no store {store_id!r}")
    return spec


async def health(request: Request) -> Response:
    return JSONResponse({"ok": True, "stores": len(state_of(request).stores)})


async def create_store(request: Request) -> Response:
    req = _validate(StoreRequest, await _json_body(request))
    spec = state_of(request).stores.create(req)
    log.info(
        "store created",
        extra={"store_id": spec.store_id, "dialect": spec.dialect, "products": spec.products, "seed": spec.seed},
    )
    return JSONResponse(store_summary(spec), status_code=201)


async def get_store(request: Request) -> Response:
    return JSONResponse(store_summary(_store(request, request.path_params["store_id"])))


async def expected_document(
    spec: StoreSpec, base_url: str, per_page: int = DEFAULT_EXPECTED_PER_PAGE
) -> AsyncIterator[bytes]:
    """Streamed in chunks: a 100,000-product document is tens of MB and must not stall the loop.

    ``per_page`` is the importer's page size: a cursor cycle hides the products past its page.
    """
    head = {"store_id": spec.store_id, "dialect": spec.dialect, "per_page": per_page}
    yield (json.dumps(head)[:-1] + ', "products": [').encode()
    for start in range(0, spec.products, EXPECTED_CHUNK):
        stop = min(spec.products, start + EXPECTED_CHUNK)
        items = ", ".join(json.dumps(expected_product(spec, i, base_url, per_page)) for i in range(start, stop))
        yield (items if start == 0 else ", " + items).encode()
        await asyncio.sleep(0)
    yield f'], "counts": {json.dumps(expected_counts(spec, per_page))}}}'.encode()


async def expected(request: Request) -> Response:
    spec = _store(request, request.path_params["store_id"])
    base_url = state_of(request).base_url(request)
    per_page = int(_float_param(request, "per_page", DEFAULT_EXPECTED_PER_PAGE))
    if not 1 <= per_page <= 10_000:
        raise AdminError(400, "bad_request", f"per_page must be 1..10000, got {per_page}")
    return StreamingResponse(expected_document(spec, base_url, per_page), media_type="application/json")


async def set_fault(request: Request) -> Response:
    req = _validate(FaultRequest, await _json_body(request))
    if req.store_id is not None:
        _store(request, req.store_id)
    rule = FaultRule(**req.model_dump())
    state_of(request).faults.set(rule)
    log.info("fault set", extra={"fault": rule.to_json()})
    return JSONResponse({"fault": rule.to_json()})


async def list_faults(request: Request) -> Response:
    return JSONResponse({"faults": [r.to_json() for r in state_of(request).faults.rules()]})


async def clear_faults(request: Request) -> Response:
    cleared = state_of(request).faults.clear()
    log.info("faults cleared", extra={"cleared": cleared})
    return JSONResponse({"cleared": cleared})


async def get_stats(request: Request) -> Response:
    """``?store_id=`` narrows ``stores`` to one; ``?stores=false`` drops it (cheap per-second sampling)."""
    state = state_of(request)
    store_id = request.query_params.get("store_id") or None
    if store_id is not None:
        _store(request, store_id)
    with_stores = request.query_params.get("stores", "true").lower() not in ("false", "0", "no")
    body = state.stats.to_json(store_id, with_stores=with_stores)
    body["image_cache"] = state.images.stats()
    return JSONResponse(body)


async def reset_stats(request: Request) -> Response:
    state_of(request).stats.reset()
    return JSONResponse({"ok": True})


def _float_param(request: Request, name: str, default: float) -> float:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise AdminError(400, "bad_request", f"{name} must be a number, got {raw!r}") from exc
    if not math.isfinite(value):
        raise AdminError(400, "bad_request", f"{name} must be finite, got {raw!r}")
    return value


async def recent_requests(request: Request) -> Response:
    since = _float_param(request, "since", 0.0)
    limit = int(_float_param(request, "limit", 0)) or None
    store_id = request.query_params.get("store_id") or None
    snapshot = state_of(request).stats.log.snapshot()  # copied on the loop: the deque keeps changing

    def render() -> bytes:
        return json.dumps(select_requests(snapshot, since, store_id, limit), separators=(",", ":")).encode()

    return Response(await asyncio.to_thread(render), media_type="application/json")
