"""Shopify-style API: cursor pagination through the ``Link: <…>; rel="next"`` header."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from importer.errors import MalformedCatalog
from importer.models import CatalogPage, ProductRecord
from importer.protection.ratelimit import CallContext
from importer.providers.base import dedupe, malformed
from importer.providers.transport import ProviderTransport

_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


class _Variant(BaseModel):
    price: str


class _Image(BaseModel):
    src: str = Field(min_length=1, max_length=2000)


class _Product(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: int = Field(ge=1)
    title: str = Field(min_length=1, max_length=1000)
    body_html: str | None = ""
    variants: list[_Variant] = Field(default_factory=list)
    images: list[_Image] = Field(default_factory=list)


class ShopifyProvider:
    name = "shopify"

    def __init__(self, transport: ProviderTransport, *, base_url: str, page_size: int) -> None:
        self._transport = transport
        self._base_url = base_url.rstrip("/")
        self._page_size = page_size

    async def fetch_page(self, store_id: str, cursor: str | None, *, company_id: str | None = None) -> CatalogPage:
        url = f"{self._base_url}/stores/{quote(store_id, safe='')}/admin/api/2024-01/products.json"
        params: dict[str, Any] = {"limit": self._page_size}
        if cursor:
            params["page_info"] = cursor
        call = CallContext(provider=self.name, account=store_id, company_id=company_id)
        body, headers = await self._transport.get_json(url, params=params, call=call)
        return parse_page(store_id, body, headers)


def next_page_info(headers: httpx.Headers | dict[str, str]) -> str | None:
    """Only the opaque page_info is kept: we never follow a URL the provider hands us as is."""
    link = headers.get("link") or headers.get("Link")
    if not link:
        return None
    match = _LINK_NEXT.search(link)
    if not match:
        return None
    values = parse_qs(urlsplit(match.group(1)).query).get("page_info")
    return values[0] if values else None


def _price_cents(item: _Product, store_id: str, index: int) -> int | None:
    if not item.variants:
        return None
    try:
        return int((Decimal(item.variants[0].price) * 100).to_integral_exact())
    except (InvalidOperation, ValueError) as exc:
        raise MalformedCatalog(
            f"store {store_id}: product #{index} has a non-numeric price {item.variants[0].price!r}"
        ) from exc


def parse_page(store_id: str, body: Any, headers: httpx.Headers | dict[str, str]) -> CatalogPage:
    if not isinstance(body, dict) or not isinstance(body.get("products"), list):
        raise MalformedCatalog(f"store {store_id}: page has no 'products' list")
    products: list[ProductRecord] = []
    for index, raw in enumerate(body["products"]):
        try:
            item = _Product.model_validate(raw)
        except ValidationError as exc:
            raise malformed(store_id, index, exc) from exc
        products.append(
            ProductRecord(
                external_id=str(item.id),
                title=item.title,
                description=item.body_html or "",
                price_cents=_price_cents(item, store_id, index),
                currency="USD" if item.variants else None,
                image_urls=tuple(i.src for i in item.images),
            )
        )
    cursor = next_page_info(headers) if products else None
    return CatalogPage(products=dedupe(products), next_cursor=cursor)
