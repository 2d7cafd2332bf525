"""What every provider dialect offers the pipeline: pages of normalised products."""

from __future__ import annotations

from typing import Protocol

from pydantic import ValidationError

from importer.errors import MalformedCatalog
from importer.models import CatalogPage, ProductRecord


class CatalogProvider(Protocol):
    name: str

    async def fetch_page(self, store_id: str, cursor: str | None, *, company_id: str | None = None) -> CatalogPage:
        """Fetch the page at ``cursor`` (None = first page); ``next_cursor`` None = last page.

        ``company_id`` names whose rate-limit budget the request spends, besides the store's.
        """
        ...


def malformed(store_id: str, index: int, exc: ValidationError) -> MalformedCatalog:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    return MalformedCatalog(
        f"store {store_id}: product #{index} on the page is malformed ({where}: {first.get('msg')})"
    )


def dedupe(products: list[ProductRecord]) -> list[ProductRecord]:
    """A page listing one product twice must not fail the batched upsert; the last copy wins."""
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
        )
    return list(by_id.values())
