"""The ASGI app: routes, shared state and JSON errors for every path (no HTML error pages)."""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lab.fake_provider import admin, serve
from lab.fake_provider.dialects import SHOPIFY_API_VERSION
from lab.fake_provider.state import ProviderConfig, ProviderState

log = logging.getLogger(__name__)


async def _admin_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, admin.AdminError)
    log.info(
        "admin request refused",
        extra={"path": request.url.path, "status": exc.status, "error": exc.code, "reason": exc.message},
    )
    return exc.response()


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse(
        {"error": "not_found" if exc.status_code == 404 else "http_error", "message": str(exc.detail)},
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    """JSON even for our own bugs; uvicorn logs the traceback after this, we add where it happened."""
    log.error("unhandled error", extra={"path": request.url.path, "method": request.method, "error": repr(exc)})
    return JSONResponse({"error": "internal_error", "message": repr(exc)}, status_code=500)


def create_app(config: ProviderConfig | None = None) -> Starlette:
    routes = [
        Route("/admin/health", admin.health, methods=["GET"]),
        Route("/admin/stores", admin.create_store, methods=["POST"]),
        Route("/admin/stores/{store_id}", admin.get_store, methods=["GET"]),
        Route("/admin/stores/{store_id}/expected", admin.expected, methods=["GET"]),
        Route("/admin/faults", admin.set_fault, methods=["POST"]),
        Route("/admin/faults", admin.list_faults, methods=["GET"]),
        Route("/admin/faults", admin.clear_faults, methods=["DELETE"]),
        Route("/admin/stats", admin.get_stats, methods=["GET"]),
        Route("/admin/stats/reset", admin.reset_stats, methods=["POST"]),
        Route("/admin/requests", admin.recent_requests, methods=["GET"]),
        Route("/roastify/v1/stores/{store_id}/products", serve.roastify_products, methods=["GET"]),
        Route(
            f"/shopify/stores/{{store_id}}/admin/api/{SHOPIFY_API_VERSION}/products.json",
            serve.shopify_products,
            methods=["GET"],
        ),
        Route("/cdn/{store_id}/{product_index:int}/{image_index:int}.jpg", serve.cdn_image, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={admin.AdminError: _admin_error, HTTPException: _http_error, Exception: _unexpected_error},
    )
    app.state.provider = ProviderState(config or ProviderConfig())
    return app
