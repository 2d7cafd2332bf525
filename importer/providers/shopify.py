"""Shopify-style API: cursor pagination through the ``Link: <…>; rel="next"`` header."""

from __future__ import annotations

import re
from typing import Any, Self
from urllib.parse import parse_qs, quote, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from importer.errors import MalformedCatalog
from importer.models import CatalogPage, ProductRecord, RejectionCode
from importer.protection.ratelimit import CallContext
from importer.providers import fields
from importer.providers.base import dedupe, image_urls_of, parse_records
from importer.providers.fields import DEFAULT_LIMITS, RecordLimits
from importer.providers.transport import ProviderTransport

_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
# The opaque cursor is stored in the job row and sent back as a query parameter: printable
# ASCII of a sane length, or the page cannot be followed.
_PAGE_INFO = re.compile(r"[!-~]{1,1024}")
MAX_LINK_HEADER_CHARS = 16_384


class _Product(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: int
    title: str
    body_html: str = ""
    variants: list[Any] = Field(default_factory=list)
    images: list[Any] = Field(default_factory=list)
    _price_cents: int | None = PrivateAttr(None)  # from the first variant, once checked

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, value: Any) -> int:
        return fields.numeric_id(value, "id")

    @field_validator("title", mode="before")
    @classmethod
    def _title(cls, value: Any, info: ValidationInfo) -> str:
        return fields.text(value, "title", fields.limits_of(info).text_max_chars, required=True)

    @field_validator("body_html", mode="before")
    @classmethod
    def _body(cls, value: Any, info: ValidationInfo) -> str:
        return fields.text(value, "body_html", fields.limits_of(info).description_max_chars, required=False)

    @field_validator("variants", mode="before")
    @classmethod
    def _variants(cls, value: Any) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise fields.reject(RejectionCode.INVALID_FIELD, "variants must be a list")
        return value[:1]  # only the first variant's price is imported

    @field_validator("images", mode="before")
    @classmethod
    def _images(cls, value: Any, info: ValidationInfo) -> list[Any]:
        return fields.image_list(value, "images", fields.limits_of(info).max_images)

    @model_validator(mode="after")
    def _first_variant_price(self, info: ValidationInfo) -> Self:
        """The first variant's price, checked like every other field (shape before value)."""
        if not self.variants:
            return self
        variant = self.variants[0]
        if not isinstance(variant, dict):
            raise fields.reject(RejectionCode.INVALID_FIELD, "variants.0 must be an object")
        raw = variant.get("price")
        if raw is not None:
            max_cents = fields.limits_of(info).price_max_cents
            self._price_cents = fields.cents(raw, "variants.0.price", max_cents, unit_cents=False)
        return self

    @property
    def price_cents(self) -> int | None:
        return self._price_cents


class ShopifyProvider:
    name = "shopify"

    def __init__(
        self, transport: ProviderTransport, *, base_url: str, page_size: int, limits: RecordLimits = DEFAULT_LIMITS
    ) -> None:
        self._transport = transport
        self._base_url = base_url.rstrip("/")
        self.page_size = page_size
        self._limits = limits

    async def fetch_page(self, store_id: str, cursor: str | None, *, company_id: str | None = None) -> CatalogPage:
        url = f"{self._base_url}/stores/{quote(store_id, safe='')}/admin/api/2024-01/products.json"
        params: dict[str, Any] = {"limit": self.page_size}
        if cursor:
            params["page_info"] = cursor
        call = CallContext(provider=self.name, account=store_id, company_id=company_id)
        body, headers = await self._transport.get_json(url, params=params, call=call)
        return parse_page(store_id, body, headers, self._limits)


def next_page_info(headers: httpx.Headers | dict[str, str]) -> str | None:
    """Only the opaque page_info is kept: we never follow a URL the provider hands us as is."""
    link = headers.get("link") or headers.get("Link")
    if not link:
        return None
    match = _LINK_NEXT.search(link[:MAX_LINK_HEADER_CHARS])
    if not match:
        return None
    try:
        values = parse_qs(urlsplit(match.group(1)).query).get("page_info")
    except ValueError:  # an invalid IPv6 literal in the link's host
        return None
    return values[0] if values else None


def parse_page(
    store_id: str, body: Any, headers: httpx.Headers | dict[str, str], limits: RecordLimits = DEFAULT_LIMITS
) -> CatalogPage:
    if not isinstance(body, dict) or not isinstance(body.get("products"), list):
        raise MalformedCatalog(f"store {store_id}: page has no 'products' list")
    items: list[Any] = body["products"]
    products, rejected = parse_records(items, _Product, _build(limits), limits=limits, id_key="id")
    unique, repeated = dedupe(products)
    # Rejected records count as records: a page of only bad products is still not the end.
    linked = next_page_info(headers)
    cursor = linked if items else None
    if cursor is not None and not _PAGE_INFO.fullmatch(cursor):
        raise MalformedCatalog(f"store {store_id}: the next-page cursor is not usable (length {len(cursor)})")
    return CatalogPage(
        products=unique,
        next_cursor=cursor,
        rejected=rejected,
        records=len(items),
        repeated_on_page=repeated,
        empty_with_next=not items and linked is not None,
    )


def _build(limits: RecordLimits) -> Any:
    def build(item: _Product) -> ProductRecord:
        urls, rejected_images = image_urls_of(item.images, "src", limits)
        return ProductRecord(
            external_id=str(item.id),
            title=item.title,
            description=item.body_html,
            price_cents=item.price_cents,
            currency="USD" if item.price_cents is not None else None,
            image_urls=urls,
            rejected_images=rejected_images,
        )

    return build
