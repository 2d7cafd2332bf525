"""Roastify-style API: numbered pages, ``meta.total_pages`` says when to stop."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from importer.errors import MalformedCatalog
from importer.models import CatalogPage, ProductRecord
from importer.protection.ratelimit import CallContext
from importer.providers import fields
from importer.providers.base import dedupe, image_urls_of, parse_records
from importer.providers.fields import DEFAULT_LIMITS, RecordLimits
from importer.providers.transport import ProviderTransport

MAX_PAGE_NUMBER = 10_000_000  # a page number or page count beyond this is not a catalog
MAX_DECLARED_TOTAL = 10**12


class _Price(BaseModel):
    amount_cents: int
    currency: str

    @field_validator("amount_cents", mode="before")
    @classmethod
    def _amount(cls, value: Any, info: ValidationInfo) -> int:
        return fields.cents(value, "amount_cents", fields.limits_of(info).price_max_cents, unit_cents=True)

    @field_validator("currency", mode="before")
    @classmethod
    def _currency(cls, value: Any) -> str:
        return fields.currency(value, "currency")


class _Product(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str
    name: str
    description: str = ""
    price: _Price | None = None
    images: list[Any] = Field(default_factory=list)

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, value: Any, info: ValidationInfo) -> str:
        return fields.text(value, "id", fields.limits_of(info).id_max_chars, required=True)

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: Any, info: ValidationInfo) -> str:
        return fields.text(value, "name", fields.limits_of(info).text_max_chars, required=True)

    @field_validator("description", mode="before")
    @classmethod
    def _description(cls, value: Any, info: ValidationInfo) -> str:
        return fields.text(value, "description", fields.limits_of(info).description_max_chars, required=False)

    @field_validator("images", mode="before")
    @classmethod
    def _images(cls, value: Any, info: ValidationInfo) -> list[Any]:
        return fields.image_list(value, "images", fields.limits_of(info).max_images)


class _Meta(BaseModel):
    model_config = ConfigDict(strict=True)
    page: int = Field(ge=1, le=MAX_PAGE_NUMBER)
    total_pages: int = Field(ge=0, le=MAX_PAGE_NUMBER)
    per_page: int | None = Field(None, ge=1, le=MAX_PAGE_NUMBER)
    total: int | None = Field(None, ge=0, le=MAX_DECLARED_TOTAL)


class RoastifyProvider:
    name = "roastify"

    def __init__(
        self, transport: ProviderTransport, *, base_url: str, page_size: int, limits: RecordLimits = DEFAULT_LIMITS
    ) -> None:
        self._transport = transport
        self._base_url = base_url.rstrip("/")
        self.page_size = page_size
        self._limits = limits

    async def fetch_page(self, store_id: str, cursor: str | None, *, company_id: str | None = None) -> CatalogPage:
        page = _page_number(store_id, cursor)
        url = f"{self._base_url}/v1/stores/{quote(store_id, safe='')}/products"
        call = CallContext(provider=self.name, account=store_id, company_id=company_id)
        body, _ = await self._transport.get_json(url, params={"page": page, "per_page": self.page_size}, call=call)
        return parse_page(store_id, body, self._limits)


def _page_number(store_id: str, cursor: str | None) -> int:
    """Our own cursor is ``str(page)``; anything else in the checkpoint is a page-level error."""
    if not cursor:
        return 1
    if not cursor.isascii() or not cursor.isdigit() or len(cursor) > 8:
        raise MalformedCatalog(f"store {store_id}: page cursor {cursor[:20]!r} is not a page number")
    return int(cursor)


def _build(limits: RecordLimits) -> Any:
    def build(item: _Product) -> ProductRecord:
        urls, rejected_images = image_urls_of(item.images, "url", limits)
        return ProductRecord(
            external_id=item.id,
            title=item.name,
            description=item.description,
            price_cents=item.price.amount_cents if item.price else None,
            currency=item.price.currency if item.price else None,
            image_urls=urls,
            rejected_images=rejected_images,
        )

    return build


def parse_page(store_id: str, body: Any, limits: RecordLimits = DEFAULT_LIMITS) -> CatalogPage:
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise MalformedCatalog(f"store {store_id}: page has no 'data' list")
    try:
        meta = _Meta.model_validate(body.get("meta"))
    except ValidationError as exc:
        raise MalformedCatalog(f"store {store_id}: page has no valid 'meta'") from exc
    items: list[Any] = body["data"]
    products, rejected = parse_records(items, _Product, _build(limits), limits=limits, id_key="id")
    unique, repeated = dedupe(products)
    # Rejected records count as records: a page of only bad products is still not the end.
    next_cursor = str(meta.page + 1) if meta.page < meta.total_pages and items else None
    return CatalogPage(
        products=unique,
        next_cursor=next_cursor,
        rejected=rejected,
        records=len(items),
        repeated_on_page=repeated,
        page_number=meta.page,
        declared_per_page=meta.per_page,
        declared_total_pages=meta.total_pages,
        declared_total=meta.total,
    )
