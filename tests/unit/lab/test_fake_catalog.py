"""Catalog generation and the dialects' page arithmetic, without a server."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lab.fake_provider import dialects
from lab.fake_provider.catalog import (
    StoreSpec,
    expected_counts,
    expected_product,
    image_fault,
    page_range,
    product,
    total_pages,
)

BASE = "http://127.0.0.1:9999"


def spec(**kw: object) -> StoreSpec:
    fields: dict[str, object] = {"store_id": "st_test", "dialect": "roastify", "products": 1000, "seed": 1}
    fields.update(kw)
    return StoreSpec(**fields)  # type: ignore[arg-type]


# --- determinism --------------------------------------------------------------------------------


def test_same_seed_same_products_whatever_the_store() -> None:
    a, b = spec(store_id="st_a"), spec(store_id="st_b")
    assert [product(a, i) for i in range(200)] == [product(b, i) for i in range(200)]


def test_different_seed_different_products() -> None:
    a, b = spec(seed=1), spec(seed=2)
    pa, pb = [product(a, i) for i in range(100)], [product(b, i) for i in range(100)]
    assert {p.external_id for p in pa}.isdisjoint(p.external_id for p in pb)
    assert sum(x.title != y.title or x.price_cents != y.price_cents for x, y in zip(pa, pb, strict=True)) > 90


def test_ids_are_unique_and_shaped_per_dialect() -> None:
    rst = [product(spec(dialect="roastify"), i) for i in range(1000)]
    shp = [product(spec(dialect="shopify"), i) for i in range(1000)]
    assert len({p.external_id for p in rst}) == 1000 and all(p.external_id.startswith("rst_") for p in rst)
    assert len({p.external_id for p in shp}) == 1000
    assert all(p.external_id == str(p.numeric_id) and 0 < p.numeric_id < 2**53 for p in shp)
    assert all(500 <= p.price_cents < 10_000 and p.title and p.description for p in rst)


def test_product_out_of_range_is_an_error() -> None:
    with pytest.raises(IndexError):
        product(spec(products=3), 3)


# --- malformed products and bad images ----------------------------------------------------------


def test_malformed_products_are_damaged_at_their_index_only() -> None:
    s = spec(products=10, malformed=frozenset({2, 7}))
    records = [dialects.roastify_product(s, i, BASE) for i in range(10)]
    assert "id" not in records[2]  # even index: missing id
    assert not isinstance(records[7]["price"]["amount_cents"], int)  # odd index: non-numeric price
    assert all("id" in records[i] and isinstance(records[i]["price"]["amount_cents"], int) for i in (0, 1, 3, 9))

    sh = replace(s, dialect="shopify")
    shop = [dialects.shopify_product(sh, i, BASE) for i in range(10)]
    assert "id" not in shop[2]
    with pytest.raises(ValueError):
        float(shop[7]["variants"][0]["price"])
    assert [expected_product(s, i, BASE)["malformed"] for i in range(10)] == [i in (2, 7) for i in range(10)]


def test_only_the_first_image_of_a_listed_product_is_bad() -> None:
    s = spec(images_per_product=3, non_image=frozenset({1}), oversized=frozenset({2}), bomb=frozenset({3}))
    assert [image_fault(s, p, 0) for p in range(5)] == [None, "non_image", "oversized", "bomb", None]
    assert all(image_fault(s, p, j) is None for p in range(5) for j in (1, 2))
    images = expected_product(s, 2, BASE)["images"]
    assert images == [
        {"url": f"{BASE}/cdn/st_test/2/0.jpg", "expect": "rejected", "code": "image_too_large"},
        {"url": f"{BASE}/cdn/st_test/2/1.jpg", "expect": "stored", "code": None},
        {"url": f"{BASE}/cdn/st_test/2/2.jpg", "expect": "stored", "code": None},
    ]


# --- expected counts ----------------------------------------------------------------------------


@pytest.mark.parametrize("ipp", [0, 1, 3])
def test_expected_counts_match_the_products(ipp: int) -> None:
    bad = {} if ipp == 0 else {"non_image": frozenset({0, 5}), "bomb": frozenset({9})}
    s = spec(products=40, images_per_product=ipp, malformed=frozenset({1, 2, 3}), **bad)
    docs = [expected_product(s, i, BASE) for i in range(s.products)]
    images = [img for d in docs for img in d["images"]]
    counts = expected_counts(s)
    assert {k: counts[k] for k in ("products", "valid_products", "malformed_products", "images")} == {
        "products": 40,
        "valid_products": sum(not d["malformed"] for d in docs),
        "malformed_products": 3,
        "images": len(images),
    }
    assert counts["images_stored"] == sum(i["expect"] == "stored" for i in images)
    assert counts["images_rejected"] == sum(i["expect"] == "rejected" for i in images)
    # a rejected product lists no expected images: it is not imported, so none can be stored
    assert counts["images"] == 37 * ipp
    want = {"missing_field": 1, "invalid_field": 2} | ({"image_not_image": 2, "image_bomb": 1} if ipp else {})
    assert counts["rejections"] == want
    assert counts["outcome"] == "WITH_REJECTIONS" and counts["verification_issues"] == []


# --- page arithmetic ----------------------------------------------------------------------------


@pytest.mark.parametrize(("total", "per", "pages"), [(0, 100, 0), (1, 100, 1), (100, 100, 1), (101, 100, 2),
                                                      (250, 100, 3), (1000, 250, 4)])  # fmt: skip
def test_total_pages(total: int, per: int, pages: int) -> None:
    assert total_pages(total, per) == pages


def test_page_range_clamps_past_the_end() -> None:
    assert page_range(10, 0, 4) == range(0, 4)
    assert page_range(10, 8, 4) == range(8, 10)
    assert len(page_range(10, 10, 4)) == 0 and len(page_range(10, 500, 4)) == 0


@pytest.mark.parametrize(("products", "per_page"), [(0, 100), (1, 100), (250, 100), (300, 100), (7, 3), (1000, 250)])
def test_roastify_pages_cover_the_catalog_once(products: int, per_page: int) -> None:
    s = spec(products=products)
    first = dialects.roastify_page(s, 1, per_page, BASE)
    n_pages = first["meta"]["total_pages"]
    assert n_pages == total_pages(products, per_page) and first["meta"]["total"] == products
    ids = [p["id"] for page in range(1, n_pages + 1) for p in dialects.roastify_page(s, page, per_page, BASE)["data"]]
    assert ids == [product(s, i).external_id for i in range(products)]
    assert dialects.roastify_page(s, n_pages + 1, per_page, BASE)["data"] == []


@pytest.mark.parametrize(("products", "limit"), [(0, 50), (1, 50), (100, 50), (230, 100), (7, 3), (1000, 250)])
def test_shopify_cursors_cover_the_catalog_once(products: int, limit: int) -> None:
    s = spec(products=products, dialect="shopify")
    offset, ids, pages = 0, [], 0
    for _ in range(products + 2):  # bounded: one page per product at worst
        page = dialects.shopify_page(s, offset, limit, BASE)
        pages += 1
        ids += [p["id"] for p in page.body["products"]]
        if page.next_url is None:
            break
        assert page.link_header == f'<{page.next_url}>; rel="next"'
        assert page.next_url.startswith(f"{BASE}/shopify/stores/st_test/admin/api/2024-01/products.json?")
        offset = dialects.decode_page_info(page.next_url.split("page_info=")[1])
    assert ids == [product(s, i).numeric_id for i in range(products)]
    assert pages == max(1, total_pages(products, limit))


def test_page_info_round_trips_and_refuses_junk() -> None:
    for offset in (0, 1, 100, 99_999):
        assert dialects.decode_page_info(dialects.encode_page_info(offset)) == offset
    assert dialects.decode_page_info(None) == 0
    for junk in ("bogus", "!!!", dialects.encode_page_info(5)[:-1] + "?", "djE6LTE"):  # last: "v1:-1"
        with pytest.raises(dialects.BadPageRequest):
            dialects.decode_page_info(junk)


def test_page_sizes_clamp_and_refuse() -> None:
    assert dialects.clamp_page_size(None, 100) == 100
    assert dialects.clamp_page_size("1000", 100) == 250
    for bad in ("0", "-1", "ten"):
        with pytest.raises(dialects.BadPageRequest):
            dialects.clamp_page_size(bad, 100)
    with pytest.raises(dialects.BadPageRequest):
        dialects.parse_roastify_page("0")
