"""The fake provider's pages read by the importer's own dialect parsers.

The proving ground must not share code with what it tests, but a drill is worthless if the
fake speaks a dialect the importer does not: this pins the two together at the wire shape.
"""

from __future__ import annotations

import json

import pytest

from importer.models import CatalogPage, RejectionCode
from importer.pipeline.pages import Finding, PageLedger
from importer.providers import roastify, shopify
from lab.fake_provider import dialects
from lab.fake_provider.catalog import EXPECTED_CODES, MALFORMED_KINDS, StoreSpec, expected_counts, expected_product

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


def _read_all(spec: StoreSpec, per_page: int = 100, max_pages: int = 50) -> tuple[list[CatalogPage], list[Finding]]:
    """Page through a fake store with the importer's parsers and page checks, as a job would."""
    ledger = PageLedger(page_size=per_page, max_pages=max_pages, slack=2)
    pages: list[CatalogPage] = []
    findings: list[Finding] = []
    cursor: str | None = None
    for _ in range(max_pages + 1):
        stop = ledger.before_fetch(cursor)
        if stop is not None:
            return pages, [*findings, stop]
        if spec.dialect == "roastify":
            raw = dialects.roastify_page(spec, int(cursor) if cursor else 1, per_page, BASE)
            page = roastify.parse_page(spec.store_id, json.loads(dialects.CatalogJSONResponse(raw).body))
        else:
            sp = dialects.shopify_page(spec, dialects.decode_page_info(cursor), per_page, BASE)
            body = json.loads(dialects.CatalogJSONResponse(sp.body).body)
            page = shopify.parse_page(spec.store_id, body, {"Link": sp.link_header} if sp.link_header else {})
        pages.append(page)
        findings += ledger.after_page(cursor, page)
        if page.next_cursor is None:
            return pages, findings + ledger.at_end(cursor)
        cursor = page.next_cursor
    raise AssertionError("the ledger did not stop the loop")


BAD_RECORDS = {kind: idx for idx, kind in enumerate(MALFORMED_KINDS)}
URL_FAULTS = {"ipv6_url": 20, "port_url": 21, "dead_host": 22, "non_image": 23}


@pytest.mark.parametrize("dialect", ["roastify", "shopify"])
def test_every_record_fault_is_rejected_with_its_code_and_the_rest_imports(dialect: str) -> None:
    spec = StoreSpec(
        store_id="st_m",
        dialect=dialect,  # type: ignore[arg-type]
        products=230,
        images_per_product=2,
        bad_records={i: k for k, i in BAD_RECORDS.items()},
        ipv6_url=frozenset({URL_FAULTS["ipv6_url"]}),
        port_url=frozenset({URL_FAULTS["port_url"]}),
        dead_host=frozenset({URL_FAULTS["dead_host"]}),
        non_image=frozenset({URL_FAULTS["non_image"]}),
    )
    pages, findings = _read_all(spec)
    assert findings == []
    expected = [expected_product(spec, i, BASE) for i in range(spec.products)]
    imported = {p.external_id: p for page in pages for p in page.products}
    assert set(imported) == {e["external_id"] for e in expected if e["expect"] == "imported"}
    got_codes = sorted((r.position, r.code.value) for page in pages for r in page.rejected)
    assert got_codes == sorted((i, EXPECTED_CODES[k]) for k, i in BAD_RECORDS.items())
    for e in expected:
        if e["expect"] != "imported":
            continue
        product = imported[e["external_id"]]
        refused = {b.url: b.code.value for b in product.rejected_images}
        for image in e["images"]:
            if image["code"] == "image_url_invalid":
                assert refused[image["url"]] == "image_url_invalid"
            else:  # fetchable URL; the download decides (dead host, non-image, ...)
                assert image["url"] in product.image_urls
    counts = expected_counts(spec)
    assert counts["outcome"] == "WITH_REJECTIONS"
    assert sum(counts["rejections"].values()) == len(BAD_RECORDS) + len(URL_FAULTS)


@pytest.mark.parametrize("dialect", ["roastify", "shopify"])
@pytest.mark.parametrize(
    ("fault", "must_report"),
    [
        ({"short_pages": frozenset({105})}, {"short_page"}),
        ({"repeat_products": frozenset({5, 6})}, {"repeated_products"}),
        ({"cycle_at_page": 2}, {"cursor_cycle"}),
        ({"endless": True}, {"page_limit_exceeded"}),
        ({"total_offset": 7}, set()),
    ],
)
def test_pagination_faults_are_seen_by_the_page_checks(dialect: str, fault: dict, must_report: set[str]) -> None:
    spec = StoreSpec(store_id="st_p", dialect=dialect, products=250, images_per_product=0, **fault)  # type: ignore[arg-type]
    pages, findings = _read_all(spec, max_pages=12)
    expected = set(expected_counts(spec)["verification_issues"])
    reported = {f.code.value for f in findings}
    assert must_report <= expected <= reported, (expected, reported)
    imported = {p.external_id for page in pages for p in page.products}
    wanted = {
        e["external_id"] for e in (expected_product(spec, i, BASE) for i in range(250)) if e["expect"] == "imported"
    }
    assert imported == wanted
    assert expected_counts(spec)["outcome"] == ("UNVERIFIED" if expected else "CLEAN")


@pytest.mark.parametrize("dialect", ["roastify", "shopify"])
@pytest.mark.parametrize("bad_index", [2, 3])  # missing id, non-numeric price
def test_importer_rejects_malformed_products(dialect: str, bad_index: int) -> None:
    spec = StoreSpec(store_id="st_c", dialect=dialect, products=5, malformed=frozenset({bad_index}))  # type: ignore[arg-type]
    if dialect == "roastify":
        page = roastify.parse_page("st_c", dialects.roastify_page(spec, 1, 100, BASE))
    else:
        page = shopify.parse_page("st_c", dialects.shopify_page(spec, 0, 100, BASE).body, {})
    [bad] = page.rejected
    assert bad.position == bad_index and len(page.products) == 4
    assert bad.code == (RejectionCode.MISSING_FIELD if bad_index == 2 else RejectionCode.INVALID_FIELD)
