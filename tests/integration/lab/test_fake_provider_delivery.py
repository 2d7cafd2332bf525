"""The fake provider's delivery faults over real HTTP: what a client receives on the wire."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.processes import fake_provider

pytestmark = pytest.mark.integration

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with (
        fake_provider(log_dir=tmp_path_factory.mktemp("fake-provider-delivery")) as server,
        httpx.Client(base_url=server.base_url, timeout=10.0) as client,
    ):
        yield client


@pytest.fixture
def server_url(http: httpx.Client) -> str:
    return str(http.base_url).rstrip("/")


def make_store(http: httpx.Client, **spec: Any) -> str:
    r = http.post("/admin/stores", json={"rate_limit_per_min": 0, **spec})
    assert r.status_code == 201, r.text
    return str(r.json()["store_id"])


def set_fault(http: httpx.Client, **rule: Any) -> None:
    http.delete("/admin/faults")
    r = http.post("/admin/faults", json=rule)
    assert r.status_code == 200, r.text


def test_gzip_bomb_page_is_small_on_the_wire_and_a_valid_page_decoded(http: httpx.Client) -> None:
    store = make_store(http, dialect="roastify", products=3)
    set_fault(http, store_id=store, delivery="gzip_bomb", bomb_bytes=16 * MiB)
    with http.stream("GET", f"/roastify/v1/stores/{store}/products") as r:
        assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
        wire = b"".join(r.iter_raw())
    assert len(wire) < 64 * 1024
    decoded = zlib.decompress(wire, 16 + zlib.MAX_WBITS)
    assert len(decoded) > 16 * MiB
    assert len(json.loads(decoded)["data"]) == 3
    http.delete("/admin/faults")


def test_trickle_sends_a_few_bytes_at_a_time(http: httpx.Client) -> None:
    store = make_store(http, dialect="roastify", products=3, images_per_product=1)
    set_fault(http, store_id=store, delivery="trickle", trickle_bytes_per_s=5, apply_to_images=True)
    with http.stream("GET", f"/cdn/{store}/0/0.jpg") as r:
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        first = next(r.iter_raw())
    assert first == b"\xff\xd8\xff\xe0\x00"  # the first 5 bytes of the JPEG, then a second's wait
    http.delete("/admin/faults")


def test_image_base_url_moves_only_image_urls(http: httpx.Client, server_url: str) -> None:
    store = make_store(http, dialect="shopify", products=3, images_per_product=1)
    set_fault(http, store_id=store, image_base_url="http://localhost:9")
    r = http.get(f"/shopify/stores/{store}/admin/api/2024-01/products.json", params={"limit": 2})
    assert r.status_code == 200
    srcs = [image["src"] for product in r.json()["products"] for image in product["images"]]
    assert srcs and all(src.startswith(f"http://localhost:9/cdn/{store}/") for src in srcs)
    assert r.headers["link"].startswith(f"<{server_url}/shopify/")  # pagination keeps the real base
    r = http.post("/admin/faults", json={"image_base_url": "not a url"})
    assert r.status_code == 422
    http.delete("/admin/faults")
