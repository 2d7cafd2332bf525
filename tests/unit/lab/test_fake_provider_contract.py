"""The fake provider's pages read by the importer's own dialect parsers.

The proving ground must not share code with what it tests, but a drill is worthless if the
fake speaks a dialect the importer does not: this pins the two together at the wire shape.
"""

from __future__ import annotations

import pytest

from importer.errors import MalformedCatalog
from importer.providers import roastify, shopify
from lab.fake_provider import dialects
from lab.fake_provider.catalog import StoreSpec, expected_product

BASE = "http://127.0.0.1:9999"


def _expected(spec: StoreSpec) -> list[tuple[str, int, tuple[str, ...]]]:
    docs = [expected_product(spec, i, BASE) for i in range(spec.products)]
    return [(d["external_id"], d["price_cents"], tuple(i["url"] for i in d["images"])) for d in docs]


def test_importer_reads_every_roastify_page() -> None:
    spec = StoreSpec(store_id="st_c", dialect="roastify", products=230, images_per_product=2, seed=4)
    got, cursor = [], None
    for _ in range(10):
        page_no = int(cursor) if cursor else 1
        page = roastify.parse_page("st_c", dialects.roastify_page(spec, page_no, 100, BASE))
        got += [(p.external_id, p.price_cents, p.image_urls) for p in page.products]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert got == _expected(spec)


def test_importer_reads_every_shopify_page() -> None:
    spec = StoreSpec(store_id="st_c", dialect="shopify", products=230, images_per_product=2, seed=4)
    got, cursor = [], None
    for _ in range(10):
        raw = dialects.shopify_page(spec, dialects.decode_page_info(cursor), 100, BASE)
        headers = {"Link": raw.link_header} if raw.link_header else {}
        page = shopify.parse_page("st_c", raw.body, headers)
        got += [(p.external_id, p.price_cents, p.image_urls) for p in page.products]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert got == _expected(spec)


@pytest.mark.parametrize("dialect", ["roastify", "shopify"])
@pytest.mark.parametrize("bad_index", [2, 3])  # missing id, non-numeric price
def test_importer_refuses_malformed_products(dialect: str, bad_index: int) -> None:
    spec = StoreSpec(store_id="st_c", dialect=dialect, products=5, malformed=frozenset({bad_index}))  # type: ignore[arg-type]
    with pytest.raises(MalformedCatalog):
        if dialect == "roastify":
            roastify.parse_page("st_c", dialects.roastify_page(spec, 1, 100, BASE))
        else:
            shopify.parse_page("st_c", dialects.shopify_page(spec, 0, 100, BASE).body, {})
