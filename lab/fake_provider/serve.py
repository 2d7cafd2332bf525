"""The provider as the importer sees it: catalog pages in two dialects and the image CDN.

Every request walks the same steps, in the order a real provider's stack would apply them:
unknown store (404) -> bad parameters (400) -> fault latency -> outage (503) -> the store's
rate limit (429) -> injected error -> page latency -> the page. An outage answers before the
rate limiter (a provider that is down counts nothing); an injected error answers after it (the
request reached the app and spent budget). Each request is recorded exactly once, whatever
happened to it, including a client hanging up (499) or a bug of ours (500, logged).

A delivery fault (``lab.fake_provider.delivery``: gzip bomb, trickle) wraps the answer last,
once it is known; an ``image_base_url`` fault rewrites the page's image URLs before rendering.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from lab.fake_provider import dialects
from lab.fake_provider.catalog import Dialect, StoreSpec, image_fault
from lab.fake_provider.delivery import gzip_bomb_stream, rebase_images, trickle
from lab.fake_provider.dialects import BadPageRequest
from lab.fake_provider.faults import RequestKind
from lab.fake_provider.images import NON_IMAGE_BODY, bomb_png, oversized_body
from lab.fake_provider.state import ProviderState, state_of
from lab.fake_provider.stats import Outcome

log = logging.getLogger(__name__)

CLIENT_CLOSED = 499
ErrorBody = Callable[[int, str, str], dict[str, Any]]
PageRenderer = Callable[[], Response]
PageParser = Callable[[ProviderState, Request, StoreSpec, Outcome], PageRenderer]


def _roastify_error(status: int, code: str, message: str) -> dict[str, Any]:
    return {"error": {"status": status, "code": code, "message": message}}


def _shopify_error(status: int, code: str, message: str) -> dict[str, Any]:
    return {"errors": message}


def _plain_error(status: int, code: str, message: str) -> dict[str, Any]:
    return {"error": code, "message": message}


_ERRORS: dict[str, ErrorBody] = {"roastify": _roastify_error, "shopify": _shopify_error, "cdn": _plain_error}


def _logged_path(request: Request) -> str:
    query = request.url.query
    return f"{request.url.path}?{query}" if query else request.url.path


def _error(flavour: str, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(_ERRORS[flavour](status, code, message), status_code=status, headers=headers)


async def _recorded(
    state: ProviderState, request: Request, outcome: Outcome, flavour: str, steps: Callable[[], Awaitable[Response]]
) -> Response:
    status = 500
    try:
        response = await steps()
        status = response.status_code
        return response
    except asyncio.CancelledError:
        status = CLIENT_CLOSED
        raise
    except Exception:
        log.exception(
            "request failed", extra={"store_id": outcome.store_id, "kind": outcome.kind, "path": request.url.path}
        )
        return _error(flavour, 500, "internal_error", "the fake provider failed; see its log")
    finally:
        state.stats.record(outcome, status)


async def _misbehave(state: ProviderState, flavour: str, spec: StoreSpec, outcome: Outcome) -> Response | None:
    """Fault latency, outage, rate limit (API only) and injected errors; None = serve normally."""
    kind = outcome.kind
    delay = state.faults.latency_s(spec.store_id, kind)
    if delay > 0:
        outcome.delayed = True
        await asyncio.sleep(delay)
    if state.faults.outage(spec.store_id, kind):
        outcome.fault = True
        return _error(flavour, 503, "service_unavailable", "the provider is down (injected outage)")
    if kind == "api":
        admission = await state.limiter.admit(spec.store_id, spec.rate_limit_per_min)
        if not admission.allowed:
            outcome.rate_limited = True
            message = (
                f"Exceeded {spec.rate_limit_per_min} calls per minute for store {spec.store_id}; "
                f"retry in {admission.retry_after} s"
            )
            return _error(flavour, 429, "rate_limited", message, headers={"Retry-After": str(admission.retry_after)})
    status = state.faults.error_status(spec.store_id, kind)
    if status is not None:
        outcome.fault = True
        headers = {"Retry-After": "1"} if status in (429, 503) else None
        return _error(flavour, status, "injected_fault", f"injected error {status}", headers=headers)
    return None


def _deliver(state: ProviderState, spec: StoreSpec, outcome: Outcome, response: Response) -> Response:
    """Wrap a finished answer in the store's delivery fault, if one applies to its kind."""
    kind: RequestKind = "image" if outcome.kind == "image" else "api"
    rule = state.faults.delivery(spec.store_id, kind)
    body = getattr(response, "body", None)  # streamed answers (oversized images) travel as they are
    if rule is None or not isinstance(body, bytes):
        return response
    outcome.fault = True
    headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-encoding")}
    if rule.delivery == "gzip_bomb":
        headers["Content-Encoding"] = "gzip"
        return StreamingResponse(
            gzip_bomb_stream(body, rule.bomb_bytes), status_code=response.status_code, headers=headers
        )
    return StreamingResponse(trickle(body, rule.trickle_bytes_per_s), status_code=response.status_code, headers=headers)


def _page_base(state: ProviderState, request: Request, spec: StoreSpec) -> tuple[str, str | None]:
    """The page's own base URL, and the base its images should be listed under if a fault moves them."""
    return state.base_url(request), state.faults.image_base_url(spec.store_id)


def _moved(page: dict[str, Any], base_url: str, image_base: str | None) -> dict[str, Any]:
    if image_base is None:
        return page
    moved = rebase_images(page, base_url, image_base)
    assert isinstance(moved, dict)
    return moved


async def _serve_page(request: Request, dialect: Dialect, parse: PageParser) -> Response:
    state = state_of(request)
    store_id = request.path_params["store_id"]
    outcome = Outcome(store_id=store_id, kind="api", path=_logged_path(request))

    async def steps() -> Response:
        spec = state.stores.get(store_id)
        if spec is None or spec.dialect != dialect:
            outcome.known_store = False
            return _error(dialect, 404, "not_found", f"no {dialect} store {store_id!r}")
        try:
            render = parse(state, request, spec, outcome)
        except BadPageRequest as exc:
            return _error(dialect, 400, "bad_request", str(exc))
        trouble = await _misbehave(state, dialect, spec, outcome)
        if trouble is not None:
            return trouble
        if spec.page_latency_ms > 0:
            await asyncio.sleep(spec.page_latency_ms / 1000)
        return _deliver(state, spec, outcome, render())

    return await _recorded(state, request, outcome, dialect, steps)


def _roastify(state: ProviderState, request: Request, spec: StoreSpec, outcome: Outcome) -> PageRenderer:
    """Parse now (a 400 must not spend budget), render later (a refused page costs no JSON)."""
    page = dialects.parse_roastify_page(request.query_params.get("page"))
    per_page = dialects.clamp_page_size(request.query_params.get("per_page"), dialects.ROASTIFY_DEFAULT_PER_PAGE)
    outcome.page_key = dialects.roastify_page_key(page, per_page)
    base_url, image_base = _page_base(state, request, spec)
    return lambda: dialects.CatalogJSONResponse(
        _moved(dialects.roastify_page(spec, page, per_page, base_url), base_url, image_base)
    )


def _shopify(state: ProviderState, request: Request, spec: StoreSpec, outcome: Outcome) -> PageRenderer:
    offset = dialects.decode_page_info(request.query_params.get("page_info"))
    limit = dialects.clamp_page_size(request.query_params.get("limit"), dialects.SHOPIFY_DEFAULT_LIMIT)
    outcome.page_key = dialects.shopify_page_key(offset, limit)
    base_url, image_base = _page_base(state, request, spec)

    def render() -> Response:
        page = dialects.shopify_page(spec, offset, limit, base_url)
        link = page.link_header
        body = _moved(page.body, base_url, image_base)
        return dialects.CatalogJSONResponse(body, headers={"Link": link} if link else None)

    return render


async def roastify_products(request: Request) -> Response:
    return await _serve_page(request, "roastify", _roastify)


async def shopify_products(request: Request) -> Response:
    return await _serve_page(request, "shopify", _shopify)


async def cdn_image(request: Request) -> Response:
    state = state_of(request)
    store_id: str = request.path_params["store_id"]
    p: int = request.path_params["product_index"]
    i: int = request.path_params["image_index"]
    outcome = Outcome(store_id=store_id, kind="image", path=request.url.path)

    async def steps() -> Response:
        spec = state.stores.get(store_id)
        if spec is None:
            outcome.known_store = False
            return _error("cdn", 404, "not_found", f"no store {store_id!r}")
        if p >= spec.products or i >= spec.images_per_product:
            return _error("cdn", 404, "not_found", f"store {store_id} has no image {p}/{i}")
        trouble = await _misbehave(state, "cdn", spec, outcome)
        if trouble is not None:
            return trouble
        return _deliver(state, spec, outcome, await _image(state, spec, p, i))

    return await _recorded(state, request, outcome, "cdn", steps)


async def _image(state: ProviderState, spec: StoreSpec, p: int, i: int) -> Response:
    match image_fault(spec, p, i):
        case "non_image":
            return Response(NON_IMAGE_BODY, media_type="text/html; charset=utf-8")
        case "oversized":
            size = spec.oversized_bytes
            return StreamingResponse(
                oversized_body(size), media_type="image/jpeg", headers={"Content-Length": str(size)}
            )
        case "bomb":
            return Response(bomb_png(), media_type="image/png")
        case "dead_host":  # a host that only times out: hang, then give up with a gateway timeout
            await asyncio.sleep(spec.dead_host_ms / 1000)
            return _error("cdn", 504, "gateway_timeout", "the image host did not answer (injected)")
        case "ipv6_url" | "port_url":  # listed under an unparsable URL: a request here is a bug
            return _error("cdn", 404, "not_found", "this image is only listed under an invalid URL")
        case None:
            body = await state.images.get((spec.seed, p, i))
            return Response(body, media_type="image/jpeg", headers={"Cache-Control": "public, max-age=86400"})
