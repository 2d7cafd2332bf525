"""Each hostile field rejects its record (with the right code) and never the page."""

from __future__ import annotations

import time
from typing import Any

import pytest

from importer.models import CatalogPage, RejectionCode
from importer.providers import roastify, shopify
from importer.providers.fields import RecordLimits

LIMITS = RecordLimits(text_max_chars=50, description_max_chars=200, max_images=3, price_max_cents=1_000_000)


def _rst(**over: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": "rst_bad",
        "name": "Coffee",
        "description": "beans",
        "price": {"amount_cents": 1299, "currency": "USD"},
        "images": [{"url": "http://cdn.example/a.jpg"}],
    }
    item.update(over)
    return item


def _shp(**over: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": 99,
        "title": "Mug",
        "body_html": "<p>x</p>",
        "variants": [{"price": "12.34"}],
        "images": [{"src": "http://cdn.example/a.jpg"}],
    }
    item.update(over)
    return item


def _roastify(bad: dict[str, Any]) -> CatalogPage:
    body = {"data": [_rst(id="rst_good"), bad], "meta": {"page": 1, "total_pages": 1}}
    return roastify.parse_page("s", body, LIMITS)


def _shopify(bad: dict[str, Any]) -> CatalogPage:
    return shopify.parse_page("s", {"products": [_shp(id=1), bad]}, {}, LIMITS)


def _price(cents: Any) -> dict[str, Any]:
    return {"amount_cents": cents, "currency": "USD"}


ROASTIFY_CASES = [
    ("missing id", {k: v for k, v in _rst().items() if k != "id"}, RejectionCode.MISSING_FIELD),
    ("id not text", _rst(id=["x"]), RejectionCode.INVALID_FIELD),
    ("NUL in title", _rst(name="Cof\x00fee"), RejectionCode.TEXT_NOT_STORABLE),
    ("lone surrogate in title", _rst(name="Cof\ud800fee"), RejectionCode.TEXT_NOT_STORABLE),
    ("NUL in description", _rst(description="a\x00"), RejectionCode.TEXT_NOT_STORABLE),
    ("NUL in id", _rst(id="a\x00"), RejectionCode.TEXT_NOT_STORABLE),
    ("title too long", _rst(name="x" * 51), RejectionCode.TEXT_TOO_LONG),
    ("description too long", _rst(description="x" * 201), RejectionCode.TEXT_TOO_LONG),
    ("empty title", _rst(name="  "), RejectionCode.MISSING_FIELD),
    ("price Infinity", _rst(price=_price("Infinity")), RejectionCode.NUMBER_NOT_FINITE),
    ("price NaN", _rst(price=_price("NaN")), RejectionCode.NUMBER_NOT_FINITE),
    ("price float inf", _rst(price=_price(float("inf"))), RejectionCode.NUMBER_NOT_FINITE),
    ("price float nan", _rst(price=_price(float("nan"))), RejectionCode.NUMBER_NOT_FINITE),
    ("price 1e999000", _rst(price=_price("1e999000")), RejectionCode.NUMBER_OUT_OF_RANGE),
    ("price negative", _rst(price=_price(-1)), RejectionCode.NUMBER_OUT_OF_RANGE),
    ("price over range", _rst(price=_price(1_000_001)), RejectionCode.NUMBER_OUT_OF_RANGE),
    ("price over bigint", _rst(price=_price(2**70)), RejectionCode.NUMBER_OUT_OF_RANGE),
    ("price huge float", _rst(price=_price(1e300)), RejectionCode.NUMBER_OUT_OF_RANGE),
    ("price fractional cents", _rst(price=_price(12.5)), RejectionCode.INVALID_FIELD),
    ("price bool", _rst(price=_price(True)), RejectionCode.INVALID_FIELD),
    ("price words", _rst(price=_price("call for price")), RejectionCode.INVALID_FIELD),
    ("price 5000 digits", _rst(price=_price("9" * 5000)), RejectionCode.INVALID_FIELD),
    ("bad currency", _rst(price={"amount_cents": 1, "currency": "US\x00"}), RejectionCode.INVALID_FIELD),
    (
        "too many images",
        _rst(images=[{"url": f"http://cdn.example/{i}.jpg"} for i in range(4)]),
        RejectionCode.TOO_MANY_IMAGES,
    ),
    ("images not a list", _rst(images="http://cdn.example/a.jpg"), RejectionCode.INVALID_FIELD),
    ("record not an object", "just a string", RejectionCode.INVALID_FIELD),
]


@pytest.mark.parametrize(("case", "bad", "code"), ROASTIFY_CASES, ids=[c[0] for c in ROASTIFY_CASES])
def test_roastify_bad_field_rejects_only_its_product(case: str, bad: Any, code: RejectionCode) -> None:
    page = _roastify(bad)
    assert [p.external_id for p in page.products] == ["rst_good"], case
    [rejected] = page.rejected
    assert rejected.code == code, rejected
    assert rejected.position == 1 and rejected.kind == "product"
    assert rejected.reason and "\x00" not in rejected.reason
    assert page.records == 2


SHOPIFY_CASES = [
    ("missing id", {k: v for k, v in _shp().items() if k != "id"}, RejectionCode.MISSING_FIELD),
    ("id as text", _shp(id="99"), RejectionCode.INVALID_FIELD),
    ("id as bool", _shp(id=True), RejectionCode.INVALID_FIELD),
    ("id over bigint", _shp(id=2**64), RejectionCode.NUMBER_OUT_OF_RANGE),
    ("NUL in title", _shp(title="M\x00ug"), RejectionCode.TEXT_NOT_STORABLE),
    ("lone surrogate in body", _shp(body_html="\udfff"), RejectionCode.TEXT_NOT_STORABLE),
    ("title too long", _shp(title="x" * 51), RejectionCode.TEXT_TOO_LONG),
    ("price Infinity", _shp(variants=[{"price": "Infinity"}]), RejectionCode.NUMBER_NOT_FINITE),
    ("price -inf", _shp(variants=[{"price": "-inf"}]), RejectionCode.NUMBER_NOT_FINITE),
    ("price NaN", _shp(variants=[{"price": "NaN"}]), RejectionCode.NUMBER_NOT_FINITE),
    ("price 1e999000", _shp(variants=[{"price": "1e999000"}]), RejectionCode.NUMBER_OUT_OF_RANGE),
    ("price negative", _shp(variants=[{"price": "-0.01"}]), RejectionCode.NUMBER_OUT_OF_RANGE),
    ("price over range", _shp(variants=[{"price": "10000.01"}]), RejectionCode.NUMBER_OUT_OF_RANGE),
    ("price json inf", _shp(variants=[{"price": float("inf")}]), RejectionCode.NUMBER_NOT_FINITE),
    ("price words", _shp(variants=[{"price": "twelve"}]), RejectionCode.INVALID_FIELD),
    ("variant not an object", _shp(variants=["12.00"]), RejectionCode.INVALID_FIELD),
    (
        "too many images",
        _shp(images=[{"src": f"http://cdn.example/{i}.jpg"} for i in range(4)]),
        RejectionCode.TOO_MANY_IMAGES,
    ),
]


@pytest.mark.parametrize(("case", "bad", "code"), SHOPIFY_CASES, ids=[c[0] for c in SHOPIFY_CASES])
def test_shopify_bad_field_rejects_only_its_product(case: str, bad: Any, code: RejectionCode) -> None:
    page = _shopify(bad)
    assert [p.external_id for p in page.products] == ["1"], case
    [rejected] = page.rejected
    assert rejected.code == code, rejected
    assert rejected.position == 1


def test_huge_exponent_is_refused_without_burning_cpu() -> None:
    """int(Decimal('1e999000') * 100) takes seconds; the shape check answers in microseconds."""
    started = time.process_time()
    for _ in range(200):
        _roastify(_rst(price=_price("1e999000")))
        _shopify(_shp(variants=[{"price": "9e99999999"}]))
    # a generous bound: the unguarded conversion takes over a second for ONE such price
    assert time.process_time() - started < 1.0


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://[::1/a.jpg", RejectionCode.IMAGE_URL_INVALID),  # invalid IPv6 literal: urlsplit raises
        ("http://[zz::1]/a.jpg", RejectionCode.IMAGE_URL_INVALID),
        ("http://cdn.example:99999/a.jpg", RejectionCode.IMAGE_URL_INVALID),  # .port raises
        ("http://cdn.example:-1/a.jpg", RejectionCode.IMAGE_URL_INVALID),
        ("http://cdn.example/a b.jpg", RejectionCode.IMAGE_URL_INVALID),
        ("http://cdn.exa\tmple/a.jpg", RejectionCode.IMAGE_URL_INVALID),
        ("http:///a.jpg", RejectionCode.IMAGE_URL_INVALID),
        ("ftp://cdn.example/a.jpg", RejectionCode.IMAGE_SCHEME_NOT_ALLOWED),
        ("file:///etc/passwd", RejectionCode.IMAGE_SCHEME_NOT_ALLOWED),
    ],
)
def test_bad_image_url_rejects_the_image_not_the_product(url: str, code: RejectionCode) -> None:
    images = [{"url": url}, {"url": "http://cdn.example/ok.jpg"}]
    page = _roastify(_rst(images=images))
    assert not page.rejected
    product = page.products[1]
    assert product.image_urls == ("http://cdn.example/ok.jpg",)
    [bad] = product.rejected_images
    assert (bad.code, bad.position, bad.url) == (code, 0, url)


@pytest.mark.parametrize(
    "url",
    [
        "http://cdn.example/\x00.jpg",
        "http://cdn.example/\ud800",
        17,
        None,
        "",
        # 1,970 characters but 5,900 bytes: past what a Postgres index entry holds
        "http://cdn.example/" + "\u6f22" * 1950,
    ],
)
def test_unstorable_image_url_is_rejected_without_its_text(url: Any) -> None:
    page = _shopify(_shp(images=[{"src": url}]))
    [bad] = page.products[1].rejected_images
    assert bad.code == RejectionCode.IMAGE_URL_INVALID and bad.url is None
    assert page.products[1].image_urls == ()


def test_a_page_of_only_bad_records_is_not_the_last_page() -> None:
    body = {"data": [{"name": "no id"}], "meta": {"page": 1, "total_pages": 3}}
    page = roastify.parse_page("s", body)
    assert page.products == [] and page.next_cursor == "2"
    headers = {"link": '<http://x/products.json?page_info=abc>; rel="next"'}
    assert shopify.parse_page("s", {"products": [{"title": "no id"}]}, headers).next_cursor == "abc"


@pytest.mark.parametrize("cursor", ["a%00b", "a b", "x" * 2000])
def test_unusable_shopify_cursor_is_a_page_error(cursor: str) -> None:
    from importer.errors import MalformedCatalog

    headers = {"link": f'<http://x/products.json?page_info={cursor}>; rel="next"'}
    with pytest.raises(MalformedCatalog, match="cursor"):
        shopify.parse_page("s", {"products": [_shp()]}, headers)


def test_page_reports_what_it_declared() -> None:
    body = {"data": [_rst(id="a"), _rst(id="a")], "meta": {"page": 2, "per_page": 2, "total_pages": 5, "total": 9}}
    page = roastify.parse_page("s", body)
    assert (page.page_number, page.declared_per_page, page.declared_total_pages, page.declared_total) == (2, 2, 5, 9)
    assert page.records == 2 and page.repeated_on_page == 1 and len(page.products) == 1


def test_a_huge_integer_literal_rejects_its_record_not_the_page() -> None:
    """json.loads refuses a 5,000-digit integer (the whole page would fail); kept as text, it
    reaches the field check. The transport decodes pages with ``parse_int=json_int``."""
    import json

    from importer.providers.fields import json_int

    raw = '{"products": [{"id": 1, "title": "ok"}, {"id": ' + "9" * 5000 + ', "title": "huge"}]}'
    page = shopify.parse_page("s", json.loads(raw, parse_int=json_int), {})
    assert [p.external_id for p in page.products] == ["1"]
    assert [r.code for r in page.rejected] == [RejectionCode.INVALID_FIELD]
    rst = '{"data": [' + json.dumps(_rst(id="a")) + ', {"id": "b", "name": "n", "price": {"amount_cents": '
    rst += "9" * 5000 + ', "currency": "USD"}}], "meta": {"page": 1, "total_pages": 1}}'
    page = roastify.parse_page("s", json.loads(rst, parse_int=json_int))
    assert [p.external_id for p in page.products] == ["a"]
    assert [r.code for r in page.rejected] == [RejectionCode.INVALID_FIELD]
