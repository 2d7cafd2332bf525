"""Property: for ANY JSON-like body a provider parser either refuses the page (MalformedCatalog)
or returns only storable products plus rejections — never another exception.

Two kinds of input: arbitrary JSON values (the envelope is usually wrong), and bodies shaped
like real pages whose fields are drawn from hostile strings and numbers (the records are
usually wrong). "Storable" is what Postgres and the image pipeline need: no NUL or lone
surrogate, lengths within the limits, finite prices within range, image URLs that parse.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from importer.errors import MalformedCatalog
from importer.models import CatalogPage, RejectionCode
from importer.providers import roastify, shopify
from importer.providers.fields import RecordLimits

LIMITS = RecordLimits(id_max_chars=40, text_max_chars=60, description_max_chars=120, max_images=4, url_max_chars=200)
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

hostile_text = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["", " ", "\x00", "a\x00b", "\ud800", "x\udfffy", "x" * 61, "x" * 500, "\u202e", "🙂"]),
)
hostile_number = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        ["Infinity", "-Infinity", "NaN", "sNaN", "1e999000", "-1e999000", "9" * 5000, "1e-999999", "12.34", "0", "-1"]
    ),
    st.from_regex(r"[+-]?\d{0,25}(\.\d{0,8})?([eE][+-]?\d{1,9})?", fullmatch=True),
    st.booleans(),
    st.none(),
)
hostile_url = st.one_of(
    st.sampled_from(
        [
            "http://cdn.example/a.jpg",
            "https://cdn.example:8443/a.jpg",
            "http://[::1/a.jpg",
            "http://[zz::1]/a.jpg",
            "http://cdn.example:99999/a.jpg",
            "http://cdn.example:-1/x",
            "http:///nohost",
            "ftp://cdn.example/a",
            "http://cdn.example/\x00",
            "http://\ud800/",
            "http://xn--/a",
            "http://cdn.example/a b",
            "//cdn.example/a",
            "http://" + "a" * 300 + "/x",
        ]
    ),
    st.text(max_size=60),
    st.builds(lambda h, p: f"http://{h}:{p}/i.jpg", st.text(max_size=20), st.integers(-5, 100_000)),
    hostile_number,
)
json_scalar = st.one_of(st.none(), st.booleans(), hostile_number, hostile_text)
json_value = st.recursive(
    json_scalar,
    lambda children: st.one_of(st.lists(children, max_size=5), st.dictionaries(hostile_text, children, max_size=5)),
    max_leaves=30,
)


good_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), min_size=1, max_size=20
).filter(str.strip)
good_url = st.builds(lambda n: f"http://cdn.example/{n}.jpg", st.integers(0, 10**6))
MISSING = object()


def image_list(key: str) -> st.SearchStrategy[Any]:
    hostile = st.builds(lambda u: {key: u}, hostile_url)
    entry = st.one_of(hostile, hostile, st.builds(lambda u: {key: u}, good_url), json_value)
    return st.one_of(st.lists(entry, min_size=1, max_size=LIMITS.max_images + 1), json_value)


ROASTIFY_HOSTILE: dict[str, st.SearchStrategy[Any]] = {
    "id": st.one_of(hostile_text, hostile_number),
    "name": hostile_text,
    "description": st.one_of(hostile_text, st.none()),
    "price": st.one_of(json_value, st.builds(lambda c: {"amount_cents": c, "currency": "USD"}, hostile_number)),
    "currency": hostile_text,
    "images": image_list("url"),
}
SHOPIFY_HOSTILE: dict[str, st.SearchStrategy[Any]] = {
    "id": hostile_number,
    "title": hostile_text,
    "body_html": st.one_of(hostile_text, st.none()),
    "variants": st.one_of(json_value, st.lists(st.builds(lambda p: {"price": p}, hostile_number), max_size=3)),
    "images": image_list("src"),
}


@st.composite
def roastify_record(draw: st.DrawFn) -> Any:
    """A good record with up to two fields made hostile or removed (or, sometimes, any JSON)."""
    if draw(st.integers(0, 9)) == 0:
        return draw(json_value)
    record: dict[str, Any] = {
        "id": draw(good_text),
        "name": draw(good_text),
        "description": draw(good_text),
        "price": {"amount_cents": draw(st.integers(0, 10**6)), "currency": "USD"},
        "images": [{"url": u} for u in draw(st.lists(good_url, max_size=3))],
    }
    if draw(st.booleans()):
        record["images"] = draw(ROASTIFY_HOSTILE["images"])
    for key in draw(st.lists(st.sampled_from(sorted(ROASTIFY_HOSTILE)), max_size=2)):
        value = draw(st.one_of(ROASTIFY_HOSTILE[key], st.just(MISSING)))
        if key == "currency":
            record["price"] = {"amount_cents": 100, "currency": value}
        elif value is MISSING:
            record.pop(key, None)
        else:
            record[key] = value
    return record


@st.composite
def shopify_record(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(json_value)
    cents = draw(st.integers(0, 10**6))
    record: dict[str, Any] = {
        "id": draw(st.integers(1, 2**53)),
        "title": draw(good_text),
        "body_html": draw(good_text),
        "variants": [{"price": f"{cents // 100}.{cents % 100:02d}"}],
        "images": [{"src": u} for u in draw(st.lists(good_url, max_size=3))],
    }
    if draw(st.booleans()):  # hostile image URLs on an otherwise good product, half the time
        record["images"] = draw(SHOPIFY_HOSTILE["images"])
    for key in draw(st.lists(st.sampled_from(sorted(SHOPIFY_HOSTILE)), max_size=2)):
        value = draw(st.one_of(SHOPIFY_HOSTILE[key], st.just(MISSING)))
        if value is MISSING:
            record.pop(key, None)
        else:
            record[key] = value
    return record


good_meta = st.builds(lambda p, t: {"page": p, "total_pages": t}, st.integers(1, 5), st.integers(0, 6))
hostile_meta = st.one_of(
    json_value,
    st.fixed_dictionaries({}, optional={k: hostile_number for k in ("page", "total_pages", "total", "per_page")}),
)
shaped_roastify = st.builds(
    lambda d, m: {"data": d, "meta": m},
    st.lists(roastify_record(), max_size=8),
    st.one_of(good_meta, good_meta, hostile_meta),
)
shaped_shopify = st.builds(lambda d: {"products": d}, st.lists(shopify_record(), max_size=8))
link_header = st.one_of(
    st.just(""),
    hostile_text,
    st.builds(lambda c: f'<http://p.example/products.json?page_info={c}>; rel="next"', st.just("abc123")),
    st.builds(lambda c: f'<http://p.example/products.json?page_info={c}>; rel="next"', hostile_text),
    st.builds(lambda h: f'<http://{h}/x?page_info=abc>; rel="next"', hostile_text),
)


def _storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def assert_storable(page: CatalogPage) -> None:
    for p in page.products:
        assert _storable(p.external_id) and 0 < len(p.external_id) <= max(LIMITS.id_max_chars, 20)
        assert _storable(p.title) and 0 < len(p.title) <= LIMITS.text_max_chars
        assert _storable(p.description) and len(p.description) <= LIMITS.description_max_chars
        if p.price_cents is not None:
            assert isinstance(p.price_cents, int) and 0 <= p.price_cents <= LIMITS.price_max_cents
            assert p.currency is not None and _storable(p.currency) and len(p.currency) == 3
        assert len(p.image_urls) + len(p.rejected_images) <= LIMITS.max_images
        for url in p.image_urls:
            assert _storable(url) and len(url) <= LIMITS.url_max_chars
            parts = urlsplit(url)
            assert parts.port is None or 0 <= parts.port <= 65535
            assert parts.scheme in ("http", "https") and parts.hostname
            httpx.URL(url)
        for bad in p.rejected_images:
            assert bad.url is None or _storable(bad.url)
            assert isinstance(bad.code, RejectionCode)
    for r in page.rejected:
        assert isinstance(r.code, RejectionCode) and r.reason and _storable(r.reason)
        assert r.external_id is None or _storable(r.external_id)
    if page.next_cursor is not None:
        assert _storable(page.next_cursor) and len(page.next_cursor) <= 1024
    assert page.records == len(page.products) + len(page.rejected) + page.repeated_on_page


def _roastify(body: Any) -> CatalogPage | None:
    try:
        return roastify.parse_page("s", body, LIMITS)
    except MalformedCatalog:
        return None


def _shopify(body: Any, link: str) -> CatalogPage | None:
    try:
        return shopify.parse_page("s", body, {"link": link} if link else {}, LIMITS)
    except MalformedCatalog:
        return None


@PROPERTY
@given(body=json_value)
def test_roastify_any_json_is_a_page_error_or_storable(body: Any) -> None:
    page = _roastify(body)
    if page is not None:
        assert_storable(page)


@PROPERTY
@given(body=shaped_roastify)
def test_roastify_hostile_records_are_rejected_never_raised(body: Any) -> None:
    page = _roastify(body)
    if page is not None:
        assert_storable(page)


@PROPERTY
@given(body=json_value, link=link_header)
def test_shopify_any_json_is_a_page_error_or_storable(body: Any, link: str) -> None:
    page = _shopify(body, link)
    if page is not None:
        assert_storable(page)


@PROPERTY
@given(body=shaped_shopify, link=link_header)
def test_shopify_hostile_records_are_rejected_never_raised(body: Any, link: str) -> None:
    page = _shopify(body, link)
    if page is not None:
        assert_storable(page)


def test_generators_reach_both_good_and_rejected_records() -> None:
    """Guard against a vacuous property: the shaped strategies do produce both outcomes."""
    good = {"id": "a", "name": "n", "price": {"amount_cents": 5, "currency": "USD"}}
    bad = {"id": "b", "name": "n", "price": {"amount_cents": math.inf, "currency": "USD"}}
    page = roastify.parse_page("s", {"data": [good, bad], "meta": {"page": 1, "total_pages": 1}}, LIMITS)
    assert len(page.products) == 1 and len(page.rejected) == 1
