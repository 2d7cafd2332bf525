"""Egress safety against real servers: internal addresses refused, bombs capped, trickles cut.

The session stack's fake provider is allowed explicitly (host and port) like in every local
stack; everything else on loopback is an internal service a catalog must not reach.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
import pytest_asyncio

from importer.egress.client import build_client
from importer.egress.policy import EgressPolicy
from importer.errors import ImageRejected, ProviderUnavailable
from importer.models import RejectionCode
from importer.pipeline.images import ImageLimits, download
from tests.support.importer_api import FakeProvider, ImporterApi

pytestmark = pytest.mark.integration

MiB = 1024 * 1024


class _Recorder(BaseHTTPRequestHandler):
    """An "internal service": answers every GET with a tiny JPEG-typed body and remembers it."""

    seen: list[str]

    def do_GET(self) -> None:
        self.seen.append(self.path)
        body = b"\xff\xd8\xff\xe0internal"
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def internal_service() -> Iterator[tuple[int, list[str]]]:
    seen: list[str] = []
    handler = type("Recorder", (_Recorder,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest_asyncio.fixture
async def clean_faults(provider: FakeProvider) -> AsyncIterator[FakeProvider]:
    """The session provider's fault rules are shared state: every test here leaves none behind."""
    await provider.clear_faults()
    try:
        yield provider
    finally:
        await provider.clear_faults()


async def _job_row(database_url: str, job_id: str) -> asyncpg.Record:
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow("SELECT status, error, attempts FROM product_import_jobs WHERE id = $1", job_id)
        assert row is not None
        return row
    finally:
        await conn.close()


async def _image_rows(database_url: str, company_id: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetch(
            "SELECT source_url, status, error, error_code FROM product_images WHERE company_id = $1", company_id
        )
    finally:
        await conn.close()


def _peak_rss(pid: int) -> int:
    """The process's peak resident set (VmHWM), in bytes: a bound that no sampling can miss."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for pid {pid}")


async def test_an_image_on_an_internal_address_is_rejected_and_never_requested(
    stack, workers, api: ImporterApi, clean_faults: FakeProvider, internal_service: tuple[int, list[str]]
) -> None:
    port, seen = internal_service
    # the host name is allowed and so is the port: only the resolved address (loopback) is wrong
    workers.start(
        env={"IMPORTER_IMAGE_ALLOWED_HOSTS": "127.0.0.1,localhost", "IMPORTER_EGRESS_ALLOWED_PORTS": f"80,443,{port}"}
    )
    tenant = await api.create_company("egress-internal")
    store = await clean_faults.create_store("roastify", products=3, images_per_product=1, seed=41)
    await clean_faults.set_faults(store_id=store, image_base_url=f"http://localhost:{port}")

    job = await api.wait_terminal(tenant, await api.submit(tenant, "roastify", store), timeout=90)

    assert job["status"] == "COMPLETED", job
    assert job["counts"]["products_imported"] == 3
    rows = await _image_rows(stack.database_url, tenant.id)
    assert len(rows) == 3
    for row in rows:
        assert urlsplit(row["source_url"]).netloc == f"localhost:{port}"
        assert row["status"] == "REJECTED", dict(row)
        assert row["error_code"] == RejectionCode.IMAGE_ADDRESS_NOT_PUBLIC.value, dict(row)
        assert "not a public address (loopback)" in row["error"]
    assert seen == []  # the internal service never saw a request


async def test_a_gzip_bomb_page_fails_the_job_with_a_reason_and_memory_stays_bounded(
    stack, workers, api: ImporterApi, clean_faults: FakeProvider
) -> None:
    worker = workers.start()
    tenant = await api.create_company("egress-bomb")
    store = await clean_faults.create_store("roastify", products=5, images_per_product=0, seed=42)
    bomb = 768 * MiB  # decoded size; about 750 KB on the wire
    await clean_faults.set_faults(store_id=store, delivery="gzip_bomb", bomb_bytes=bomb)
    before = _peak_rss(worker.pid)

    job = await api.wait_terminal(tenant, await api.submit(tenant, "roastify", store), timeout=120)

    row = await _job_row(stack.database_url, job["id"])
    assert row["status"] == "FAILED", dict(row)
    assert "not a catalog page" in row["error"], row["error"]
    assert row["attempts"] == 1  # permanent: not retried
    growth = _peak_rss(worker.pid) - before
    # the cap is 20 MiB decoded; reading it whole would take the bomb's 768 MiB and more
    assert growth < 200 * MiB, f"worker peak RSS grew by {growth / MiB:.0f} MiB"
    print(f"768 MiB gzip bomb page: worker peak RSS grew by {growth / MiB:.0f} MiB")


async def test_a_trickling_page_is_cut_at_its_deadline_and_retried_as_transient(
    stack, workers, api: ImporterApi, clean_faults: FakeProvider
) -> None:
    workers.start(
        env={
            "IMPORTER_PROVIDER_REQUEST_DEADLINE": "1.5",
            "IMPORTER_JOB_MAX_TRIES": "2",
            "IMPORTER_RETRY_BACKOFF_BASE": "0.5",
            "IMPORTER_RETRY_BACKOFF_MAX": "1",
            # this test's failures must not open the shared breaker (that would defer, not fail)
            "IMPORTER_BREAKER_FAILURE_THRESHOLD": "1000",
        }
    )
    tenant = await api.create_company("egress-trickle")
    store = await clean_faults.create_store("roastify", products=5, images_per_product=0, seed=43)
    # ~1.3 KB at 4 bytes a second: every read well within the 30 s per-read timeout, the page
    # complete only after about 5 minutes; the job timeout (2 h) is never the one that ends it
    await clean_faults.set_faults(store_id=store, delivery="trickle", trickle_bytes_per_s=4)

    job = await api.wait_terminal(tenant, await api.submit(tenant, "roastify", store), timeout=90)

    row = await _job_row(stack.database_url, job["id"])
    assert row["status"] == "FAILED", dict(row)
    assert "within the 1.5s request deadline" in row["error"], row["error"]
    assert row["attempts"] == 2  # transient: retried with backoff until the last try


def _image_policy(stack) -> EgressPolicy:  # type: ignore[no-untyped-def]
    return EgressPolicy.build(
        schemes=["http", "https"],
        ports=[80, 443],
        allowed_private=[urlsplit(stack.provider_url).netloc],
        resolve_timeout=5.0,
    )


async def test_image_downloads_are_cut_at_their_deadline_and_capped_decoded(stack, clean_faults: FakeProvider) -> None:
    policy = _image_policy(stack)
    limits = ImageLimits(
        allowed_hosts=frozenset({"127.0.0.1"}),
        max_bytes=2 * MiB,
        max_pixels=40_000_000,
        thumbnail_size=64,
        policy=policy,
        deadline=1.0,
    )
    trickling = await clean_faults.create_store("roastify", products=1, images_per_product=1, seed=44)
    bombing = await clean_faults.create_store("roastify", products=1, images_per_product=1, seed=45)
    async with build_client(policy, timeout=30.0, limits=httpx.Limits(max_connections=4)) as client:
        # a normal image from the explicitly allowed fake CDN still downloads
        data, content_type = await download(client, f"{stack.provider_url}/cdn/{trickling}/0/0.jpg", limits)
        assert content_type == "image/jpeg" and data[:2] == b"\xff\xd8"

        await clean_faults.set_faults(
            store_id=trickling, delivery="trickle", trickle_bytes_per_s=4, apply_to_images=True
        )
        started = time.monotonic()
        with pytest.raises(ProviderUnavailable, match="1s deadline"):
            await download(client, f"{stack.provider_url}/cdn/{trickling}/0/0.jpg", limits)
        assert time.monotonic() - started < 25  # bounded by the deadline, not by the 30 s per-read timeout

        await clean_faults.set_faults(store_id=bombing, delivery="gzip_bomb", bomb_bytes=64 * MiB, apply_to_images=True)
        with pytest.raises(ImageRejected) as caught:
            await asyncio.wait_for(download(client, f"{stack.provider_url}/cdn/{bombing}/0/0.jpg", limits), 60)
        assert caught.value.code is RejectionCode.IMAGE_TOO_LARGE
