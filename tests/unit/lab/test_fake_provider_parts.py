"""The fake provider's other parts in isolation: images, faults, rate limit, stats, validation, CLI."""

from __future__ import annotations

import argparse
import asyncio
import io
import json

import pytest
from PIL import Image

from lab.fake_provider.__main__ import loopback_host
from lab.fake_provider.admin import expected_document
from lab.fake_provider.catalog import StoreSpec, expected_counts, expected_product
from lab.fake_provider.faults import FaultBook, FaultRule
from lab.fake_provider.images import JpegCache, bomb_png, oversized_body, render_jpeg
from lab.fake_provider.ratelimit import StoreRateLimiter
from lab.fake_provider.stats import Outcome, Stats, select_requests
from lab.fake_provider.stores import StoreRegistry, StoreRequest

# --- images -------------------------------------------------------------------------------------


def test_jpegs_are_deterministic_distinct_and_small() -> None:
    bodies = [render_jpeg(3, p, i) for p in range(10) for i in range(2)]
    assert bodies == [render_jpeg(3, p, i) for p in range(10) for i in range(2)]
    assert len(set(bodies)) == len(bodies)
    assert render_jpeg(4, 0, 0) != render_jpeg(3, 0, 0)
    for body in bodies:
        assert 4_000 <= len(body) <= 25_000
        with Image.open(io.BytesIO(body)) as img:
            assert (img.format, img.size) == ("JPEG", (320, 240))


async def test_jpeg_cache_renders_once_and_evicts() -> None:
    cache = JpegCache(max_entries=2)
    first = await asyncio.gather(*(cache.get((0, 0, 0)) for _ in range(5)))
    assert len(set(first)) == 1 and cache.misses == 1 and cache.hits == 4
    await cache.get((0, 1, 0))
    await cache.get((0, 2, 0))
    assert cache.stats()["entries"] == 2
    await cache.get((0, 0, 0))  # evicted: rendered again
    assert cache.misses == 4


def test_bomb_declares_huge_dimensions() -> None:
    body = bomb_png()
    assert len(body) < 1024 and body.startswith(b"\x89PNG")
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(body))


async def test_oversized_body_streams_exactly_the_size() -> None:
    for size in (1, 10, 65_536, 200_001):
        chunks = [c async for c in oversized_body(size)]
        assert sum(map(len, chunks)) == size
        assert max(map(len, chunks)) <= 65_536


# --- faults -------------------------------------------------------------------------------------


def test_fault_rolls_are_seeded() -> None:
    book = FaultBook()

    def run() -> list[int | None]:
        book.set(FaultRule(error_rate=0.3, error_status=503, seed=42))
        return [book.error_status("st_a", "api") for _ in range(50)]

    first = run()
    assert first == run()
    assert 503 in first and None in first


def test_store_rule_beats_the_global_rule_and_images_need_opt_in() -> None:
    book = FaultBook()
    book.set(FaultRule(outage=True))
    book.set(FaultRule(store_id="st_a", latency_ms=100))
    assert book.outage("st_b", "api") and not book.outage("st_a", "api")
    assert book.latency_s("st_a", "api") == 0.1 and book.latency_s("st_b", "api") == 0.0
    assert not book.outage("st_b", "image")
    book.set(FaultRule(error_rate=1.0, apply_to_images=True))
    assert book.error_status("st_b", "image") == 500
    assert book.clear() == 2 and book.rules() == []


# --- rate limit ---------------------------------------------------------------------------------


async def test_moving_window_refuses_with_retry_after() -> None:
    limiter = StoreRateLimiter()
    results = [await limiter.admit("st_a", 3) for _ in range(4)]
    assert [r.allowed for r in results] == [True, True, True, False]
    assert 1 <= results[-1].retry_after <= 60
    assert (await limiter.admit("st_b", 3)).allowed  # stores do not share a budget
    assert all([(await limiter.admit("st_c", 0)).allowed for _ in range(500)])  # 0 = unlimited


# --- stats --------------------------------------------------------------------------------------


def test_stats_count_per_store_and_the_log_is_bounded() -> None:
    stats = Stats(log_size=3)
    for status in (200, 200, 429):
        outcome = Outcome(store_id="st_a", kind="api", path="/p", page_key="page=1&per_page=100")
        outcome.rate_limited = status == 429
        stats.record(outcome, status)
    stats.record(Outcome(store_id="st_x", kind="image", path="/cdn/x", known_store=False), 404)
    body = stats.to_json()
    assert body["totals"]["api_requests"] == 3 and body["totals"]["image_requests"] == 1
    assert body["totals"]["page_requests"] == 2
    assert list(body["stores"]) == ["st_a"]  # unknown stores only count in totals
    assert body["stores"]["st_a"]["page_requests"] == {"page=1&per_page=100": 2}
    assert body["stores"]["st_a"]["rate_limited"] == 1
    assert body["stores"]["st_a"]["responses"] == {"200": 2, "429": 1}
    assert len(stats.log) == 3  # ring buffer: the oldest entry is gone


def test_select_requests_filters_sorts_and_limits() -> None:
    entries = [
        (3.0, "a", "api", "/3", 200, 1.0),
        (1.0, "a", "api", "/1", 200, 1.0),
        (2.0, "b", "image", "/2", 200, 1.0),
    ]
    assert [r["path"] for r in select_requests(entries)] == ["/1", "/2", "/3"]
    assert [r["path"] for r in select_requests(entries, since=2.0)] == ["/2", "/3"]
    assert [r["path"] for r in select_requests(entries, store_id="a")] == ["/1", "/3"]
    assert [r["path"] for r in select_requests(entries, limit=1)] == ["/3"]


# --- store validation ---------------------------------------------------------------------------


def test_store_defaults_follow_the_dialect() -> None:
    registry = StoreRegistry()
    rst = registry.create(StoreRequest.model_validate({"dialect": "roastify", "products": 3}))
    shp = registry.create(StoreRequest.model_validate({"dialect": "shopify", "products": 3, "rate_limit_per_min": 0}))
    assert (rst.rate_limit_per_min, shp.rate_limit_per_min) == (100, 0)
    assert rst.store_id != shp.store_id and rst.store_id.startswith("st_") and len(rst.store_id) == 15
    assert registry.get(rst.store_id) is rst


@pytest.mark.parametrize(
    "body",
    [
        {"dialect": "roastify", "products": -1},
        {"dialect": "roastify", "products": True},
        {"dialect": "roastify", "products": 3, "images_per_product": 0, "bad_images": {"bomb": [0]}},
        {"dialect": "roastify", "products": 3, "bad_images": {"gif": [0]}},
        {"dialect": "roastify", "products": 3, "rate_limit_per_min": -5},
    ],
)
def test_store_requests_that_make_no_sense_are_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        StoreRequest.model_validate(body)


# --- the streamed expected document -------------------------------------------------------------


@pytest.mark.parametrize("products", [0, 1, 499, 500, 1001])
async def testexpected_document_is_one_valid_json_object(products: int) -> None:
    spec = StoreSpec(store_id="st_e", dialect="shopify", products=products, images_per_product=2)
    raw = b"".join([chunk async for chunk in expected_document(spec, "http://127.0.0.1:1")])
    doc = json.loads(raw)
    assert doc["store_id"] == "st_e" and doc["dialect"] == "shopify"
    assert doc["products"] == [expected_product(spec, i, "http://127.0.0.1:1") for i in range(products)]
    assert doc["counts"] == expected_counts(spec)


# --- CLI ----------------------------------------------------------------------------------------


def test_only_loopback_hosts_are_accepted() -> None:
    assert loopback_host("127.0.0.1") == "127.0.0.1"
    assert loopback_host("[::1]") == "::1"
    for host in ("0.0.0.0", "localhost", "10.0.0.1", "::", "127.0.0.2"):
        with pytest.raises(argparse.ArgumentTypeError):
            loopback_host(host)
