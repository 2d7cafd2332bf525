import pytest

from importer.errors import MalformedCatalog
from importer.models import RejectionCode
from importer.providers import roastify, shopify
from importer.providers.transport import parse_retry_after


def _roastify_item(i: int, **over: object) -> dict[str, object]:
    item: dict[str, object] = {
        "id": f"rst_{i}",
        "name": f"Coffee {i}",
        "description": "beans",
        "price": {"amount_cents": 1299, "currency": "USD"},
        "images": [{"url": f"http://127.0.0.1/cdn/s/{i}/0.jpg"}],
    }
    item.update(over)
    return item


def test_roastify_page_is_normalised_and_paginates() -> None:
    body = {"data": [_roastify_item(1), _roastify_item(2)], "meta": {"page": 1, "per_page": 2, "total_pages": 3}}
    page = roastify.parse_page("s", body)
    assert [p.external_id for p in page.products] == ["rst_1", "rst_2"]
    assert page.products[0].price_cents == 1299
    assert page.products[0].image_urls == ("http://127.0.0.1/cdn/s/1/0.jpg",)
    assert page.next_cursor == "2"
    last = roastify.parse_page("s", {"data": [_roastify_item(5)], "meta": {"page": 3, "per_page": 2, "total_pages": 3}})
    assert last.next_cursor is None


def test_roastify_malformed_product_is_rejected_and_the_page_imports() -> None:
    body = {"data": [_roastify_item(1), {"name": "no id"}], "meta": {"page": 1, "per_page": 2, "total_pages": 1}}
    page = roastify.parse_page("s", body)
    assert [p.external_id for p in page.products] == ["rst_1"]
    [bad] = page.rejected
    assert (bad.position, bad.external_id, bad.code) == (1, None, RejectionCode.MISSING_FIELD)
    assert "id" in bad.reason


def test_roastify_page_envelope_is_still_a_page_error() -> None:
    with pytest.raises(MalformedCatalog, match="'data' list"):
        roastify.parse_page("s", {"meta": {"page": 1, "total_pages": 1}})
    with pytest.raises(MalformedCatalog, match="meta"):
        roastify.parse_page("s", {"data": []})


def test_duplicate_products_on_a_page_collapse() -> None:
    body = {"data": [_roastify_item(1), _roastify_item(1, name="again")], "meta": {"page": 1, "total_pages": 1}}
    page = roastify.parse_page("s", body)
    assert len(page.products) == 1 and page.products[0].title == "again"


def test_shopify_cursor_comes_from_link_header_only() -> None:
    body = {
        "products": [
            {
                "id": 7,
                "title": "Mug",
                "body_html": "<p>x</p>",
                "variants": [{"price": "12.34"}],
                "images": [{"src": "http://cdn.example/u.jpg"}],
            }
        ]
    }
    headers = {"link": '<http://evil.example/products.json?limit=1&page_info=abc123>; rel="next"'}
    page = shopify.parse_page("s", body, headers)
    assert page.products[0].external_id == "7"
    assert page.products[0].price_cents == 1234
    assert page.next_cursor == "abc123"
    assert shopify.parse_page("s", body, {}).next_cursor is None


def test_shopify_non_numeric_price_is_rejected() -> None:
    body = {"products": [{"id": 1, "title": "x", "variants": [{"price": "twelve"}]}, {"id": 2, "title": "y"}]}
    page = shopify.parse_page("s", body, {})
    assert [p.external_id for p in page.products] == ["2"]
    [bad] = page.rejected
    assert (bad.external_id, bad.code) == ("1", RejectionCode.INVALID_FIELD)
    assert "not a number" in bad.reason


@pytest.mark.parametrize(("value", "expected"), [("7", 7.0), ("0", 0.0), (None, 1.0), ("garbage", 1.0)])
def test_retry_after_parsing(value: str | None, expected: float) -> None:
    assert parse_retry_after(value) == expected


def test_shopify_empty_page_that_still_links_onwards_ends_paging_but_says_so() -> None:
    headers = {"link": '<http://cdn.example/products.json?page_info=next1>; rel="next"'}
    page = shopify.parse_page("s", {"products": []}, headers)
    assert page.next_cursor is None and page.empty_with_next
    assert not shopify.parse_page("s", {"products": []}, {}).empty_with_next


def test_a_page_listing_more_records_than_a_page_may_hold_is_refused_whole() -> None:
    from importer.errors import MalformedCatalog
    from importer.providers.fields import RecordLimits

    limits = RecordLimits(page_max_records=5)
    body = {"data": [1] * 6, "meta": {"page": 1, "total_pages": 1}}
    with pytest.raises(MalformedCatalog, match="6 records"):
        roastify.parse_page("s", body, limits)
    assert roastify.parse_page("s", {"data": [1] * 5, "meta": {"page": 1, "total_pages": 1}}, limits).records == 5
