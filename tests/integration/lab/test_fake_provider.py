"""The fake provider as a real server: a subprocess on a free loopback port, driven over HTTP."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.support.processes import ServerProcess, ServerStartError, fake_provider, free_port, server_process

pytestmark = pytest.mark.integration

MAX_PAGES = 1000  # every pagination loop below stops here at the latest


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with fake_provider(log_dir=tmp_path_factory.mktemp("fake-provider")) as server:
        yield server


@pytest.fixture(scope="module")
def http(provider: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=provider.base_url, timeout=10.0) as client:
        yield client


def make_store(http: httpx.Client, **spec: Any) -> dict[str, Any]:
    response = http.post("/admin/stores", json=spec)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def expected_of(http: httpx.Client, store_id: str) -> dict[str, Any]:
    response = http.get(f"/admin/stores/{store_id}/expected")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def roastify_pages(http: httpx.Client, store_id: str, per_page: int) -> list[dict[str, Any]]:
    pages = []
    for page in range(1, MAX_PAGES + 1):
        r = http.get(f"/roastify/v1/stores/{store_id}/products", params={"page": page, "per_page": per_page})
        assert r.status_code == 200, r.text
        pages.append(r.json())
        if page >= r.json()["meta"]["total_pages"]:
            return pages
    raise AssertionError("roastify pagination did not end")


def shopify_pages(http: httpx.Client, store_id: str, limit: int) -> list[dict[str, Any]]:
    url: str | None = f"/shopify/stores/{store_id}/admin/api/2024-01/products.json?limit={limit}"
    pages = []
    for _ in range(MAX_PAGES):
        assert url is not None
        r = http.get(url)
        assert r.status_code == 200, r.text
        pages.append(r.json())
        url = r.links.get("next", {}).get("url")
        if url is None:
            return pages
        assert url.startswith(str(http.base_url).rstrip("/")), url  # absolute, pointing back at us
    raise AssertionError("shopify pagination did not end")


# --- process ------------------------------------------------------------------------------------


def test_refuses_a_non_loopback_host() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lab.fake_provider", "--host", "0.0.0.0", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert result.returncode == 2
    assert "loopback only" in result.stderr


def test_start_helper_reports_a_crash_with_its_log() -> None:
    crash = [sys.executable, "-c", "import sys; print('boom: no config'); sys.exit(3)"]
    with pytest.raises(ServerStartError, match="boom: no config"), server_process(lambda port: crash, health_path="/"):
        pass


def test_start_helper_gives_up_in_bounded_time_and_kills_the_child() -> None:
    started = time.monotonic()
    hang = [sys.executable, "-c", "import time; time.sleep(60)"]
    with (
        pytest.raises(ServerStartError, match="did not answer"),
        server_process(lambda port: hang, health_path="/", startup_timeout=0.5),
    ):
        pass
    assert time.monotonic() - started < 10


def test_health(http: httpx.Client) -> None:
    r = http.get("/admin/health")
    assert r.status_code == 200
    assert r.json()["ok"] is True


def test_logs_are_json_lines(provider: ServerProcess) -> None:
    lines = [line for line in provider.log_tail(20_000).splitlines() if line.strip()]
    assert lines
    for line in lines:
        assert isinstance(json.loads(line), dict), line


# --- catalogs -----------------------------------------------------------------------------------


def test_roastify_pages_give_exactly_the_expected_catalog(http: httpx.Client) -> None:
    store = make_store(http, dialect="roastify", products=250, images_per_product=2, seed=11, rate_limit_per_min=0)
    assert store["pages_at_100"] == 3
    pages = roastify_pages(http, store["store_id"], per_page=100)
    assert [len(p["data"]) for p in pages] == [100, 100, 50]
    assert pages[-1]["meta"] == {"page": 3, "per_page": 100, "total_pages": 3, "total": 250}
    past_end = http.get(f"/roastify/v1/stores/{store['store_id']}/products", params={"page": 4, "per_page": 100})
    assert past_end.status_code == 200 and past_end.json()["data"] == []

    served = [(p["id"], p["name"], p["price"]["amount_cents"], [i["url"] for i in p["images"]]) for pg in pages
              for p in pg["data"]]  # fmt: skip
    expected = expected_of(http, store["store_id"])
    wanted = [(p["external_id"], p["title"], p["price_cents"], [i["url"] for i in p["images"]])
              for p in expected["products"]]  # fmt: skip
    assert served == wanted
    assert expected["counts"] == {
        "products": 250,
        "valid_products": 250,
        "malformed_products": 0,
        "images": 500,
        "images_stored": 500,
        "images_rejected": 0,
        "rejections": {},
        "verification_issues": [],
        "outcome": "CLEAN",
    }


def test_shopify_cursor_pages_give_exactly_the_expected_catalog(http: httpx.Client) -> None:
    store = make_store(http, dialect="shopify", products=230, seed=5, rate_limit_per_min=0)
    pages = shopify_pages(http, store["store_id"], limit=100)
    assert [len(p["products"]) for p in pages] == [100, 100, 30]
    served = [(str(p["id"]), p["title"], p["variants"][0]["price"], [i["src"] for i in p["images"]]) for pg in pages
              for p in pg["products"]]  # fmt: skip
    expected = expected_of(http, store["store_id"])
    wanted = [(p["external_id"], p["title"], f"{p['price_cents'] / 100:.2f}", [i["url"] for i in p["images"]])
              for p in expected["products"]]  # fmt: skip
    assert served == wanted
    assert all(p["images"][0]["position"] == 1 for pg in pages for p in pg["products"])


def test_unknown_store_is_404_json_in_both_dialects(http: httpx.Client) -> None:
    r = http.get("/roastify/v1/stores/st_nope/products")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = http.get("/shopify/stores/st_nope/admin/api/2024-01/products.json")
    assert r.status_code == 404 and "errors" in r.json()
    assert http.get("/admin/stores/st_nope/expected").status_code == 404
    assert http.get("/cdn/st_nope/0/0.jpg").status_code == 404


def test_bad_page_parameters_are_400(http: httpx.Client) -> None:
    store = make_store(http, dialect="shopify", products=3, rate_limit_per_min=0)
    r = http.get(f"/shopify/stores/{store['store_id']}/admin/api/2024-01/products.json?page_info=bogus")
    assert r.status_code == 400 and "page_info" in r.json()["errors"]
    store = make_store(http, dialect="roastify", products=3, rate_limit_per_min=0)
    r = http.get(f"/roastify/v1/stores/{store['store_id']}/products", params={"page": 0})
    assert r.status_code == 400


def test_malformed_products_appear_at_their_index(http: httpx.Client) -> None:
    rst = make_store(http, dialect="roastify", products=6, malformed_products=[2, 3], rate_limit_per_min=0)
    data = roastify_pages(http, rst["store_id"], per_page=100)[0]["data"]
    assert "id" not in data[2]
    assert not isinstance(data[3]["price"]["amount_cents"], int)
    assert all("id" in data[i] and isinstance(data[i]["price"]["amount_cents"], int) for i in (0, 1, 4, 5))

    shp = make_store(http, dialect="shopify", products=6, malformed_products=[4, 5], rate_limit_per_min=0)
    products = shopify_pages(http, shp["store_id"], limit=250)[0]["products"]
    assert "id" not in products[4]
    with pytest.raises(ValueError):
        float(products[5]["variants"][0]["price"])

    expected = expected_of(http, shp["store_id"])
    assert [p["malformed"] for p in expected["products"]] == [False] * 4 + [True] * 2
    assert expected["counts"]["malformed_products"] == 2 and expected["counts"]["valid_products"] == 4


def test_bad_store_specs_are_refused_with_a_message(http: httpx.Client) -> None:
    cases: list[tuple[Any, int, str]] = [
        ({"dialect": "magento", "products": 1}, 422, "dialect"),
        ({"dialect": "roastify", "products": 100_001}, 422, "products"),
        ({"dialect": "roastify", "products": "10"}, 422, "products"),
        ({"dialect": "roastify", "products": 5, "images_per_product": 21}, 422, "images_per_product"),
        ({"dialect": "roastify", "products": 5, "malformed_products": [5]}, 422, "outside"),
        ({"dialect": "roastify", "products": 5, "bad_images": {"bomb": [1], "oversized": [1]}}, 422, "more than one"),
        ({"dialect": "roastify", "products": 5, "colour": "red"}, 422, "colour"),
        ({"dialect": "roastify", "products": 5, "bad_records": {"nul_title": [9]}}, 422, "outside"),
        ({"dialect": "roastify", "products": 5, "bad_records": {"lava": [1]}}, 422, "bad_records"),
        (
            {"dialect": "roastify", "products": 5, "bad_records": {"nul_title": [1], "price_nan": [1]}},
            422,
            "more than one",
        ),
        (
            {"dialect": "roastify", "products": 5, "malformed_products": [2], "bad_records": {"nul_title": [2]}},
            422,
            "more than one",
        ),
        ({"dialect": "roastify", "products": 5, "pagination": {"cycle_at_page": 1}}, 422, "cycle_at_page"),
        ([1, 2], 400, "object"),
    ]
    for body, status, needle in cases:
        r = http.post("/admin/stores", json=body)
        assert r.status_code == status, (body, r.text)
        assert needle in r.json()["message"], (body, r.text)
    r = http.post("/admin/stores", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400


# --- images -------------------------------------------------------------------------------------


def test_images_are_deterministic_jpegs(http: httpx.Client) -> None:
    store = make_store(http, dialect="roastify", products=4, images_per_product=3, rate_limit_per_min=0)
    urls = [i["url"] for p in expected_of(http, store["store_id"])["products"] for i in p["images"]]
    bodies = []
    for url in urls:
        r = http.get(url)
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        with Image.open(io.BytesIO(r.content)) as img:
            assert img.format == "JPEG" and img.size == (320, 240)
            img.load()
        assert 4_000 <= len(r.content) <= 25_000
        bodies.append(r.content)
    assert len(set(bodies)) == len(bodies)
    assert http.get(urls[0]).content == bodies[0]
    assert http.get(f"/cdn/{store['store_id']}/0/3.jpg").status_code == 404  # only 3 images per product


def test_bad_images_behave_as_configured(http: httpx.Client) -> None:
    store = make_store(
        http,
        dialect="shopify",
        products=4,
        images_per_product=2,
        bad_images={"non_image": [0], "oversized": [1], "bomb": [2]},
        rate_limit_per_min=0,
    )
    expected = expected_of(http, store["store_id"])
    expects = [[i["expect"] for i in p["images"]] for p in expected["products"]]
    assert expects == [["rejected", "stored"]] * 3 + [["stored", "stored"]]
    assert expected["counts"]["images_rejected"] == 3 and expected["counts"]["images_stored"] == 5
    first = [p["images"][0]["url"] for p in expected["products"]]

    r = http.get(first[0])
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")

    with http.stream("GET", first[1]) as r:
        assert r.headers["content-type"] == "image/jpeg"
        assert int(r.headers["content-length"]) == 11 * 1024 * 1024
        assert sum(len(chunk) for chunk in r.iter_bytes()) == 11 * 1024 * 1024

    r = http.get(first[2])
    assert r.status_code == 200 and len(r.content) < 1024
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(r.content))

    second = http.get(expected["products"][0]["images"][1]["url"])  # the product's other image is fine
    assert second.headers["content-type"] == "image/jpeg"


def test_oversized_size_is_configurable(http: httpx.Client) -> None:
    store = make_store(
        http,
        dialect="roastify",
        products=1,
        bad_images={"oversized": [0]},
        oversized_bytes=300_000,
        rate_limit_per_min=0,
    )
    r = http.get(f"/cdn/{store['store_id']}/0/0.jpg")
    assert len(r.content) == 300_000 and r.content.startswith(b"\xff\xd8")


# --- rate limit ---------------------------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after(http: httpx.Client) -> None:
    store = make_store(http, dialect="roastify", products=10, rate_limit_per_min=5)
    sid = store["store_id"]
    statuses = [http.get(f"/roastify/v1/stores/{sid}/products").status_code for _ in range(5)]
    assert statuses == [200] * 5
    r = http.get(f"/roastify/v1/stores/{sid}/products")
    assert r.status_code == 429
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert r.json()["error"]["code"] == "rate_limited"
    for _ in range(8):  # the CDN is not rate limited
        assert http.get(f"/cdn/{sid}/0/0.jpg").status_code == 200
    stats = http.get("/admin/stats", params={"store_id": sid}).json()["stores"][sid]
    assert stats["rate_limited"] == 1 and stats["api_requests"] == 6 and stats["responses"]["429"] == 1


def test_shopify_default_rate_limit_is_120(http: httpx.Client) -> None:
    store = make_store(http, dialect="shopify", products=1)
    assert store["rate_limit_per_min"] == 120
    assert make_store(http, dialect="roastify", products=1)["rate_limit_per_min"] == 100


# --- faults -------------------------------------------------------------------------------------


@pytest.fixture
def faults(http: httpx.Client) -> Iterator[httpx.Client]:
    http.delete("/admin/faults")
    try:
        yield http
    finally:
        assert http.delete("/admin/faults").status_code == 200


def test_error_rate_one_fails_every_api_request_of_that_store(faults: httpx.Client) -> None:
    a = make_store(faults, dialect="roastify", products=5, rate_limit_per_min=0)["store_id"]
    b = make_store(faults, dialect="roastify", products=5, rate_limit_per_min=0)["store_id"]
    r = faults.post("/admin/faults", json={"store_id": a, "error_rate": 1.0, "error_status": 502})
    assert r.status_code == 200, r.text
    assert [faults.get(f"/roastify/v1/stores/{a}/products").status_code for _ in range(3)] == [502] * 3
    assert faults.get(f"/roastify/v1/stores/{b}/products").status_code == 200
    assert faults.get(f"/cdn/{a}/0/0.jpg").status_code == 200  # images untouched by default
    assert faults.get("/admin/faults").json()["faults"][0]["store_id"] == a
    stats = faults.get("/admin/stats", params={"store_id": a}).json()["stores"][a]
    assert stats["faults_injected"] == 3

    faults.post("/admin/faults", json={"store_id": a, "error_rate": 1.0, "apply_to_images": True})
    assert faults.get(f"/cdn/{a}/0/0.jpg").status_code == 500

    assert faults.delete("/admin/faults").json()["cleared"] == 1
    assert faults.get("/admin/faults").json() == {"faults": []}
    assert faults.get(f"/roastify/v1/stores/{a}/products").status_code == 200


def test_outage_answers_503_everywhere_until_cleared(faults: httpx.Client) -> None:
    rst = make_store(faults, dialect="roastify", products=5, rate_limit_per_min=2)["store_id"]
    shp = make_store(faults, dialect="shopify", products=5, rate_limit_per_min=0)["store_id"]
    faults.post("/admin/faults", json={"outage": True})
    statuses = [faults.get(f"/roastify/v1/stores/{rst}/products").status_code for _ in range(4)]
    assert statuses == [503] * 4  # an outage answers before the rate limiter: never a 429
    assert faults.get(f"/shopify/stores/{shp}/admin/api/2024-01/products.json").status_code == 503
    assert faults.get(f"/cdn/{rst}/0/0.jpg").status_code == 200
    faults.delete("/admin/faults")
    assert faults.get(f"/roastify/v1/stores/{rst}/products").status_code == 200


def test_injected_errors_are_reproducible(faults: httpx.Client) -> None:
    sid = make_store(faults, dialect="roastify", products=5, rate_limit_per_min=0)["store_id"]

    def run() -> list[int]:
        faults.post("/admin/faults", json={"store_id": sid, "error_rate": 0.5, "seed": 7})
        return [faults.get(f"/roastify/v1/stores/{sid}/products").status_code for _ in range(20)]

    first, second = run(), run()
    assert first == second
    assert 200 in first and 500 in first


def test_fault_latency_and_page_latency_delay_without_blocking(faults: httpx.Client, provider: ServerProcess) -> None:
    slow = make_store(faults, dialect="roastify", products=5, rate_limit_per_min=0, page_latency_ms=300)["store_id"]
    fast = make_store(faults, dialect="roastify", products=5, rate_limit_per_min=0)["store_id"]
    faults.post("/admin/faults", json={"store_id": fast, "latency_ms": 250})

    async def timed(client: httpx.AsyncClient, path: str) -> float:
        started = time.perf_counter()
        r = await client.get(path)
        assert r.status_code == 200
        return time.perf_counter() - started

    async def main() -> list[float]:
        async with httpx.AsyncClient(base_url=provider.base_url, timeout=10.0) as client:
            paths = [f"/roastify/v1/stores/{slow}/products"] * 10 + [f"/roastify/v1/stores/{fast}/products"] * 10
            started = time.perf_counter()
            times = await asyncio.gather(*(timed(client, p) for p in paths))
            return [*times, time.perf_counter() - started]

    *times, wall = asyncio.run(main())
    assert min(times[:10]) >= 0.29 and min(times[10:]) >= 0.24
    assert wall < 2.0  # 20 delayed requests at once: the sleeps overlap, nothing blocks the loop


def test_fault_for_unknown_store_or_bad_rule_is_refused(faults: httpx.Client) -> None:
    assert faults.post("/admin/faults", json={"store_id": "st_nope", "outage": True}).status_code == 404
    r = faults.post("/admin/faults", json={"error_rate": 1.5})
    assert r.status_code == 422 and "error_rate" in r.json()["message"]


# --- stats and the request log ------------------------------------------------------------------


def test_stats_and_request_log_count_what_was_sent(http: httpx.Client) -> None:
    sid = make_store(http, dialect="shopify", products=150, rate_limit_per_min=0)["store_id"]
    t0 = time.time()
    base = f"/shopify/stores/{sid}/admin/api/2024-01/products.json"
    first = http.get(base, params={"limit": 100})
    http.get(base, params={"limit": 100})  # the first page, fetched twice
    http.get(first.links["next"]["url"])
    http.get(f"/cdn/{sid}/0/0.jpg")
    http.get(f"/cdn/{sid}/1/0.jpg")
    http.get(f"/cdn/{sid}/999/0.jpg")  # no such product: 404, still counted

    stats = http.get("/admin/stats", params={"store_id": sid}).json()
    mine = stats["stores"][sid]
    assert mine["api_requests"] == 3 and mine["image_requests"] == 3
    assert mine["page_requests"] == {"offset=0&limit=100": 2, "offset=100&limit=100": 1}
    assert mine["responses"] == {"200": 5, "404": 1}
    assert stats["totals"]["api_requests"] >= 3
    assert "stores" not in http.get("/admin/stats", params={"stores": "false"}).json()

    log = http.get("/admin/requests", params={"since": t0, "store_id": sid}).json()
    assert [(e["kind"], e["status"]) for e in log] == [("api", 200)] * 3 + [("image", 200)] * 2 + [("image", 404)]
    assert all(e["store_id"] == sid and e["ts"] >= t0 for e in log)
    assert log[0]["path"].startswith(base) and log[3]["path"] == f"/cdn/{sid}/0/0.jpg"
    assert http.get("/admin/requests", params={"since": time.time() + 60, "store_id": sid}).json() == []
    assert http.get("/admin/requests", params={"since": "yesterday"}).status_code == 400


def test_stats_reset(http: httpx.Client) -> None:
    sid = make_store(http, dialect="roastify", products=1, rate_limit_per_min=0)["store_id"]
    http.get(f"/roastify/v1/stores/{sid}/products")
    assert http.post("/admin/stats/reset").status_code == 200
    stats = http.get("/admin/stats").json()
    assert stats["totals"]["api_requests"] == 0 and stats["stores"] == {}
    assert http.get("/admin/requests").json() == []


# --- load ---------------------------------------------------------------------------------------


def test_many_concurrent_images_and_pages(provider: ServerProcess, http: httpx.Client) -> None:
    """A burst like a drill's: pages are still served while hundreds of images render.

    How fast is a benchmark question (machines here are noisy); this test only proves the page
    is answered correctly in the middle of the burst and every image arrives."""
    stores = [make_store(http, dialect="roastify", products=50, images_per_product=2, seed=100 + n,
                         rate_limit_per_min=0)["store_id"] for n in range(4)]  # fmt: skip
    image_paths = [f"/cdn/{s}/{p}/{i}.jpg" for s in stores for p in range(50) for i in range(2)]  # 400 images

    async def main() -> tuple[list[int], float]:
        limits = httpx.Limits(max_connections=32)
        async with (
            httpx.AsyncClient(base_url=provider.base_url, timeout=30.0, limits=limits) as images_client,
            httpx.AsyncClient(base_url=provider.base_url, timeout=30.0) as page_client,
        ):
            images = asyncio.gather(*(images_client.get(p) for p in image_paths))
            await asyncio.sleep(0.1)  # let the burst reach the server
            page_started = time.perf_counter()
            page = await page_client.get(f"/roastify/v1/stores/{stores[0]}/products")
            page_time = time.perf_counter() - page_started
            assert page.status_code == 200
            responses = await asyncio.wait_for(images, timeout=60)
            return [r.status_code for r in responses], page_time

    statuses, page_time = asyncio.run(main())
    assert statuses == [200] * len(image_paths)
    print(f"page answered in {page_time:.3f}s during a {len(image_paths)}-image burst")


# --- messy catalogs -------------------------------------------------------------------------------


def test_messy_records_are_served_as_valid_json_with_their_damage(http: httpx.Client) -> None:
    store = make_store(
        http,
        dialect="roastify",
        products=8,
        images_per_product=1,
        rate_limit_per_min=0,
        bad_records={"nul_title": [0], "surrogate_title": [1], "price_infinity": [2], "price_huge_exponent": [3]},
        bad_images={"ipv6_url": [4], "port_url": [5]},
    )
    r = http.get(f"/roastify/v1/stores/{store['store_id']}/products", params={"per_page": 100})
    assert r.status_code == 200 and r.content.isascii()  # non-ASCII travels escaped
    data = r.json()["data"]
    assert "\x00" in data[0]["name"] and "\ud800" in data[1]["name"]
    assert data[2]["price"]["amount_cents"] == "Infinity" and data[3]["price"]["amount_cents"] == "1e999000"
    assert data[4]["images"][0]["url"].startswith("http://[::1/")
    assert ":99999/" in data[5]["images"][0]["url"]
    expected = expected_of(http, store["store_id"])
    assert [p["expect"] for p in expected["products"]] == ["rejected"] * 4 + ["imported"] * 4
    assert [p["code"] for p in expected["products"][:4]] == [
        "text_not_storable",
        "text_not_storable",
        "number_not_finite",
        "number_out_of_range",
    ]
    assert expected["products"][4]["images"][0]["code"] == "image_url_invalid"
    assert expected["counts"]["outcome"] == "WITH_REJECTIONS"


def test_a_dead_image_host_hangs_then_gives_up(http: httpx.Client) -> None:
    store = make_store(http, dialect="shopify", products=2, bad_images={"dead_host": [0]}, dead_host_ms=300)
    url = expected_of(http, store["store_id"])["products"][0]["images"][0]["url"]
    started = time.monotonic()
    r = http.get(url)
    assert r.status_code == 504 and time.monotonic() - started >= 0.3


def test_pagination_faults_bend_the_page_sequence(http: httpx.Client) -> None:
    sid = make_store(
        http,
        dialect="roastify",
        products=30,
        rate_limit_per_min=0,
        pagination={"cycle_at_page": 2, "short_pages": [3], "total_offset": 4},
    )["store_id"]
    page2 = http.get(f"/roastify/v1/stores/{sid}/products", params={"page": 2, "per_page": 10}).json()
    assert page2["meta"]["page"] == 1  # so the next page is page 2 again
    page1 = http.get(f"/roastify/v1/stores/{sid}/products", params={"page": 1, "per_page": 10}).json()
    assert len(page1["data"]) == 9 and page1["meta"]["total"] == 34
    expected = http.get(f"/admin/stores/{sid}/expected", params={"per_page": 10}).json()
    assert [p["expect"] for p in expected["products"]].count("omitted") == 1 + 10  # the left-out one + page 3
    assert set(expected["counts"]["verification_issues"]) == {"cursor_cycle", "short_page", "total_mismatch"}

    shp = make_store(http, dialect="shopify", products=20, rate_limit_per_min=0, pagination={"repeat_products": [2]})[
        "store_id"
    ]
    first = http.get(f"/shopify/stores/{shp}/admin/api/2024-01/products.json", params={"limit": 10})
    nxt = first.headers["link"].split("page_info=")[1].split(">")[0]
    second = http.get(f"/shopify/stores/{shp}/admin/api/2024-01/products.json", params={"limit": 10, "page_info": nxt})
    assert (
        len(second.json()["products"]) == 11
        and second.json()["products"][-1]["id"] == first.json()["products"][2]["id"]
    )
