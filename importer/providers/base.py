"""What every provider dialect offers the pipeline: pages of normalised products.

A page's envelope (its list of records, its pagination) is the provider's promise; when it is
broken the page cannot be read at all (``MalformedCatalog``). A single record that breaks the
dialect's rules never breaks the page: it comes back as a ``RejectedRecord`` with a code and a
reason, and the page's other records are imported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from importer.errors import MalformedCatalog
from importer.models import CatalogPage, ProductRecord, RejectedImage, RejectedRecord
from importer.providers.fields import RecordLimits, check_image_url, rejection_of, safe_external_id

M = TypeVar("M", bound=BaseModel)


class CatalogProvider(Protocol):
    name: str

    async def fetch_page(self, store_id: str, cursor: str | None, *, company_id: str | None = None) -> CatalogPage:
        """Fetch the page at ``cursor`` (None = first page); ``next_cursor`` None = last page.

        ``company_id`` names whose rate-limit budget the request spends, besides the store's.
        """
        ...

    page_size: int  # records a full page holds, as requested from the provider


def parse_records(
    items: list[Any],
    model: type[M],
    build: Callable[[M], ProductRecord],
    *,
    limits: RecordLimits,
    id_key: str,
) -> tuple[list[ProductRecord], list[RejectedRecord]]:
    """Validate each record on its own: good ones built, bad ones rejected with their code."""
    if len(items) > limits.page_max_records:
        raise MalformedCatalog(f"page lists {len(items)} records, over the {limits.page_max_records} one page may hold")
    products: list[ProductRecord] = []
    rejected: list[RejectedRecord] = []
    for index, raw in enumerate(items):
        try:
            item = model.model_validate(raw, context={"limits": limits})
        except ValidationError as exc:
            code, reason = rejection_of(exc)
            external_id = safe_external_id(raw.get(id_key), limits) if isinstance(raw, dict) else None
            rejected.append(RejectedRecord("product", index, external_id, code, reason))
            continue
        products.append(build(item))
    return products, rejected


def dedupe(products: list[ProductRecord]) -> tuple[list[ProductRecord], int]:
    """A page listing one product twice must not fail the batched upsert; the last copy wins.

    Returns the products and how many copies were dropped (the page checks report repeats).
    """
    by_id: dict[str, ProductRecord] = {}
    for product in products:
        urls = tuple(dict.fromkeys(product.image_urls))
        by_id[product.external_id] = ProductRecord(
            external_id=product.external_id,
            title=product.title,
            description=product.description,
            price_cents=product.price_cents,
            currency=product.currency,
            image_urls=urls,
            rejected_images=product.rejected_images,
        )
    return list(by_id.values()), len(products) - len(by_id)


def image_urls_of(
    entries: list[Any], key: str, limits: RecordLimits
) -> tuple[tuple[str, ...], tuple[RejectedImage, ...]]:
    """Split a product's image entries into fetchable URLs and rejected images (by position)."""
    good: list[str] = []
    bad: list[RejectedImage] = []
    for position, entry in enumerate(entries):
        raw = entry.get(key) if isinstance(entry, dict) else None
        checked = check_image_url(raw, position, limits)
        if isinstance(checked, str):
            good.append(checked)
        else:
            bad.append(checked)
    return tuple(good), tuple(bad)
