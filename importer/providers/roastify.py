"""Roastify-style API: numbered pages, ``meta.total_pages`` says when to stop."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from importer.errors import MalformedCatalog
from importer.models import CatalogPage, ProductRecord
from importer.protection.ratelimit import CallContext
from importer.providers.base import dedupe, malformed
from importer.providers.transport import ProviderTransport


class _Price(BaseModel):
    amount_cents: int = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3)


class _Image(BaseModel):
    url: str = Field(min_length=1, max_length=2000)


class _Product(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=1000)
    description: str = ""
    price: _Price | None = None
    images: list[_Image] = Field(default_factory=list)


class _Meta(BaseModel):
    page: int
    total_pages: int


class RoastifyProvider:
    name = "roastify"

    def __init__(self, transport: ProviderTransport, *, base_url: str, page_size: int) -> None:
        self._transport = transport
        self._base_url = base_url.rstrip("/")
        self._page_size = page_size

    async def fetch_page(self, store_id: str, cursor: str | None, *, company_id: str | None = None) -> CatalogPage:
        page = int(cursor) if cursor else 1
        url = f"{self._base_url}/v1/stores/{quote(store_id, safe='')}/products"
        call = CallContext(provider=self.name, account=store_id, company_id=company_id)
        body, _ = await self._transport.get_json(url, params={"page": page, "per_page": self._page_size}, call=call)
        return parse_page(store_id, body)


def parse_page(store_id: str, body: Any) -> CatalogPage:
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise MalformedCatalog(f"store {store_id}: page has no 'data' list")
    try:
        meta = _Meta.model_validate(body.get("meta"))
    except ValidationError as exc:
        raise MalformedCatalog(f"store {store_id}: page has no valid 'meta'") from exc
    products: list[ProductRecord] = []
    for index, raw in enumerate(body["data"]):
        try:
            item = _Product.model_validate(raw)
        except ValidationError as exc:
            raise malformed(store_id, index, exc) from exc
        products.append(
            ProductRecord(
                external_id=item.id,
                title=item.name,
                description=item.description,
                price_cents=item.price.amount_cents if item.price else None,
                currency=item.price.currency if item.price else None,
                image_urls=tuple(i.url for i in item.images),
            )
        )
    next_cursor = str(meta.page + 1) if meta.page < meta.total_pages and products else None
    return CatalogPage(products=dedupe(products), next_cursor=next_cursor)
