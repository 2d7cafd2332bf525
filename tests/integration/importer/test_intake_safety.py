"""Intake safety: bodies capped while read, authentication before the body, strict JSON, one
error shape, tenant-facing job errors, failed-auth limits and a cap on open event streams."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import psutil
import pytest

from importer.db.companies import hash_api_key
from importer.settings import Settings
from tests.support import raw_http
from tests.support.importer_api import FakeProvider, ImporterApi

pytestmark = pytest.mark.integration

_DEFAULTS = Settings.model_fields


def _setting(stack, name: str) -> int:
    """The API's value of a setting: the stack's environment, else the production default."""
    value = stack.importer_env().get(f"IMPORTER_{name.upper()}")
    return int(value) if value is not None else int(_DEFAULTS[name].default)


def _host(stack) -> str:
    parts = urlsplit(stack.api_url)
    return f"{parts.hostname}:{parts.port}"


def _api_processes(stack) -> list[psutil.Process]:
    root = psutil.Process(stack.api.pid)
    return [root, *root.children(recursive=True)]


def _reset_peak_rss(procs: list[psutil.Process]) -> None:
    for proc in procs:  # "5" resets the peak RSS (VmHWM) the kernel keeps for the process
        Path(f"/proc/{proc.pid}/clear_refs").write_text("5")


def _peak_rss(procs: list[psutil.Process]) -> int:
    total = 0
    for proc in procs:
        for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1]) * 1024
    return total


def _assert_error_shape(body: dict, code: str | None = None) -> None:
    assert isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("code"), str) and body["code"], body
    assert "detail" not in body, body
    if code is not None:
        assert body["code"] == code, body


# --- body size and authentication before the body ------------------------------------------------


async def test_declared_oversized_body_is_refused_before_it_is_sent(stack, api: ImporterApi):
    tenant = await api.create_company("big-declared")
    limit = _setting(stack, "api_max_body_bytes")
    reader, writer = await raw_http.open_to(stack.api_url)
    try:
        head = raw_http.request_head(
            "POST",
            "/v1/imports",
            _host(stack),
            {**tenant.headers, "Content-Type": "application/json"},
            content_length=limit * 100,
        )
        await raw_http.send_all(writer, [head, b"{" + b" " * 1023])
        # The rest of the body is never sent: an API that waits for it never answers.
        response = await raw_http.read_response(reader)
    finally:
        await raw_http.close(writer)
    assert response.status == 413
    _assert_error_shape(response.json(), "body_too_large")


async def test_chunked_body_is_cut_off_once_it_passes_the_limit(stack, api: ImporterApi):
    tenant = await api.create_company("big-chunked")
    limit = _setting(stack, "api_max_body_bytes")
    chunk = b" " * 16384
    chunks = [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * (limit // len(chunk) + 2)  # just past the limit
    reader, writer = await raw_http.open_to(stack.api_url)
    try:
        head = raw_http.request_head(
            "POST",
            "/v1/imports",
            _host(stack),
            {**tenant.headers, "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        )
        await raw_http.send_all(writer, [head, *chunks])  # no terminating chunk: the body never ends
        response = await raw_http.read_response(reader)
    finally:
        await raw_http.close(writer)
    assert response.status == 413
    _assert_error_shape(response.json(), "body_too_large")


async def test_unauthenticated_body_is_refused_before_it_is_read(stack):
    reader, writer = await raw_http.open_to(stack.api_url)
    try:
        head = raw_http.request_head(
            "POST", "/v1/imports", _host(stack), {"Content-Type": "application/json"}, content_length=60_000
        )
        await raw_http.send_all(writer, [head, b'{"provider": "roastify", "store_id": "'])
        response = await raw_http.read_response(reader)  # 59,960 bytes of the body never sent
    finally:
        await raw_http.close(writer)
    assert response.status == 401
    _assert_error_shape(response.json(), "missing_credentials")


async def test_large_unauthenticated_bodies_do_not_grow_the_api(stack):
    """Five 20 MB bodies without a key, in parallel: the API's peak memory stays put."""
    procs = _api_processes(stack)
    _reset_peak_rss(procs)
    before = _peak_rss(procs)
    size = 20 * 1024 * 1024
    payload = b'{"provider": "roastify", "store_id": "' + b"a" * (size - 60) + b'"}'

    async def one() -> None:
        reader, writer = await raw_http.open_to(stack.api_url)
        try:
            head = raw_http.request_head(
                "POST",
                "/v1/imports",
                _host(stack),
                {"Content-Type": "application/json", "Authorization": "Bearer pik_not-a-key"},
                content_length=len(payload),
            )
            view = memoryview(payload)
            await raw_http.send_all(
                writer, [head, *(bytes(view[i : i + 1 << 20]) for i in range(0, len(payload), 1 << 20))]
            )
            with contextlib.suppress(TimeoutError, ConnectionError, asyncio.IncompleteReadError, OSError):
                await raw_http.read_response(reader, within=30)
        finally:
            await raw_http.close(writer)

    await asyncio.gather(*(one() for _ in range(5)))
    growth = _peak_rss(procs) - before
    print(f"peak RSS growth of the API for 5 x 20 MB unauthenticated bodies: {growth / 2**20:.1f} MiB")
    assert growth < 50 * 1024 * 1024, f"the API's peak RSS grew by {growth / 2**20:.0f} MiB"


# --- strict JSON, strict booleans, one error shape -------------------------------------------------


async def test_duplicate_json_keys_are_a_400(stack, api: ImporterApi):
    tenant = await api.create_company("dupes")
    body = b'{"provider": "roastify", "store_id": "s1", "store_id": "s2"}'
    r = await api.http.post("/v1/imports", content=body, headers={**tenant.headers, "content-type": "application/json"})
    assert r.status_code == 400, r.text
    _assert_error_shape(r.json(), "duplicate_json_key")
    assert "store_id" in r.json()["error"]


@pytest.mark.parametrize("value", [0, 1, "true", "yes"])
async def test_booleans_are_strict(stack, api: ImporterApi, value):
    tenant = await api.create_company("strict")
    r = await api.http.post(
        "/v1/imports", json={"provider": "roastify", "store_id": "s1", "include_images": value}, headers=tenant.headers
    )
    assert r.status_code == 422, r.text
    _assert_error_shape(r.json(), "validation_error")
    assert "include_images" in r.json()["error"]
    r = await api.http.post("/v1/ops/companies", json={"name": "x", "vip": value}, headers=api.operator_headers)
    assert r.status_code == 422, r.text


async def test_every_error_answer_has_the_api_shape(stack, api: ImporterApi):
    tenant = await api.create_company("shapes")
    h = tenant.headers
    cases = [
        (await api.http.get("/nowhere"), 404),
        (await api.http.get(f"/v1/imports/{'0' * 8}-0000-0000-0000-{'0' * 12}", headers=h), 404),
        (await api.http.get("/v1/imports/not-a-uuid", headers=h), 422),
        (await api.http.delete("/v1/imports", headers=h), 405),
        (await api.http.post("/v1/imports", content=b"{", headers={**h, "content-type": "application/json"}), 400),
        (await api.http.post("/v1/imports", content=b"provider=x", headers={**h, "content-type": "text/plain"}), 415),
        (await api.http.post("/v1/imports", json={"provider": "etsy", "store_id": "s"}, headers=h), 422),
        (await api.http.post("/v1/imports", json={}, headers={"Authorization": "Bearer pik_nope"}), 401),
        (await api.http.post("/v1/ops/companies", json={"name": "x"}, headers=h), 401),
    ]
    for response, status in cases:
        assert response.status_code == status, (response.request.method, response.request.url, response.text)
        _assert_error_shape(response.json())
        assert response.headers["content-type"].startswith("application/json")
    assert "allow" in cases[3][0].headers  # Starlette's 405 keeps its Allow header


async def test_error_statuses_are_in_the_openapi_document(api: ImporterApi):
    document = (await api.http.get("/openapi.json")).json()
    create = document["paths"]["/v1/imports"]["post"]["responses"]
    for status in ("202", "400", "401", "409", "413", "415", "422", "429", "503"):
        assert status in create, (status, sorted(create))
    assert "Retry-After" in create["503"]["headers"]
    error_schema = document["components"]["schemas"]["ErrorBody"]
    assert set(error_schema["required"]) == {"error", "code"}
    events = document["paths"]["/v1/imports/{job_id}/events"]["get"]["responses"]
    assert {"401", "404", "429"} <= set(events)


# --- tenant-facing job errors ---------------------------------------------------------------------


async def test_provider_failure_is_shown_as_a_code_without_internals(stack, api: ImporterApi):
    stack.start_worker()
    tenant = await api.create_company("lost-store-2")
    job = await api.wait_terminal(tenant, await api.submit(tenant, "roastify", "st_doesnotexist2"), timeout=60)
    assert job["status"] == "FAILED"
    assert job["error_code"] == "provider_rejected"
    assert "404" in job["error"] and "://" not in job["error"] and "127.0.0.1" not in job["error"]


async def test_internal_error_text_never_reaches_the_tenant(stack, api: ImporterApi):
    tenant = await api.create_company("internal")
    job_id = await api.submit(tenant, "roastify", "st_internal")
    secret = "internal error: ValueError: invalid literal at http://10.1.2.3:5432/secret <Record id=1>"
    conn = await asyncpg.connect(stack.database_url)
    try:  # the row as the worker writes it when something unexpected breaks a job
        await conn.execute(
            "UPDATE product_import_jobs SET status = 'FAILED', error = $2, finished_at = now() WHERE id = $1",
            job_id,
            secret,
        )
    finally:
        await conn.close()
    job = await api.get(tenant, job_id)
    assert job["error_code"] == "internal_error"
    assert "ValueError" not in job["error"] and "10.1.2.3" not in job["error"]
    async with api.http.stream("GET", f"/v1/imports/{job_id}/events", headers=tenant.headers) as response:
        text = (await response.aread()).decode()
    assert "ValueError" not in text and "10.1.2.3" not in text and "internal_error" in text


# --- failed authentication: negative cache and rate limit -------------------------------------------


async def test_unknown_keys_are_negatively_cached(stack, api: ImporterApi):
    tenant = await api.create_company("late-key")
    key = "pik_negative-cache-probe-key"
    headers = {"Authorization": f"Bearer {key}"}
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.3")
    async with httpx.AsyncClient(base_url=stack.api_url, transport=transport, timeout=10) as http:
        assert (await http.get("/v1/imports/00000000-0000-0000-0000-000000000000", headers=headers)).status_code == 401
        conn = await asyncpg.connect(stack.database_url)
        try:  # the key becomes valid behind the API's back: a cached "unknown" still refuses it
            await conn.execute(
                "INSERT INTO api_keys (company_id, key_hash, key_prefix) VALUES ($1, $2, $3)",
                tenant.id,
                hash_api_key(key),
                key[:10],
            )
        finally:
            await conn.close()
        r = await http.get("/v1/imports/00000000-0000-0000-0000-000000000000", headers=headers)
    assert r.status_code == 401, r.text
    _assert_error_shape(r.json(), "invalid_api_key")


async def test_repeated_failed_authentication_is_rate_limited_per_address(stack, api: ImporterApi):
    tenant = await api.create_company("innocent")
    limit = _setting(stack, "auth_failure_limit_per_min")
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")  # its own address: its own limit
    async with httpx.AsyncClient(base_url=stack.api_url, transport=transport, timeout=10) as attacker:
        for i in range(limit):
            r = await attacker.get(
                "/v1/imports/00000000-0000-0000-0000-000000000000", headers={"Authorization": f"Bearer pik_guess{i}"}
            )
            assert r.status_code == 401, (i, r.text)
        r = await attacker.get(
            "/v1/imports/00000000-0000-0000-0000-000000000000", headers={"Authorization": "Bearer pik_more"}
        )
        assert r.status_code == 429, r.text
        _assert_error_shape(r.json(), "auth_rate_limited")
        assert 1 <= int(r.headers["retry-after"]) <= 60
        # A good key still passes from a limited address: behind a proxy every tenant shares one
        # address, and one caller's junk must not lock the others out (keys are 256-bit random,
        # so guessing gains nothing anyway).
        r = await attacker.get("/v1/imports/00000000-0000-0000-0000-000000000000", headers=tenant.headers)
        assert r.status_code == 404, r.text
    # Other addresses are not affected.
    r = await api.http.get("/v1/imports/00000000-0000-0000-0000-000000000000", headers=tenant.headers)
    assert r.status_code == 404


# --- a cap on open event streams per company -------------------------------------------------------


async def test_open_event_streams_are_capped_per_company(stack, api: ImporterApi, provider: FakeProvider):
    cap = _setting(stack, "sse_max_streams_per_company")
    tenant = await api.create_company("streamer")
    other = await api.create_company("other-streamer")
    job_id = await api.submit(tenant, "roastify", "st_streamed")  # no worker: it stays PENDING
    other_job = await api.submit(other, "roastify", "st_streamed")
    limits = httpx.Limits(max_connections=cap + 10, max_keepalive_connections=0)
    async with (
        httpx.AsyncClient(base_url=stack.api_url, timeout=30, limits=limits) as http,
        contextlib.AsyncExitStack() as open_streams,
    ):

        async def open_one(tenant_headers: dict[str, str], jid: str) -> httpx.Response:
            response = await open_streams.enter_async_context(
                http.stream("GET", f"/v1/imports/{jid}/events", headers=tenant_headers)
            )
            if response.status_code == 200:
                # Kept referenced: a line iterator that is garbage-collected closes its stream.
                lines = response.aiter_lines()
                readers.append(lines)
                async for line in lines:  # the snapshot arrived: the stream holds its slot
                    if line.startswith("data:"):
                        break
            return response

        readers: list[object] = []
        held = []
        for _ in range(cap):
            held.append(await open_one(tenant.headers, job_id))
        assert all(r.status_code == 200 for r in held)
        refused = await open_one(tenant.headers, job_id)
        assert refused.status_code == 429
        _assert_error_shape(json.loads(await refused.aread()), "too_many_streams")
        assert int(refused.headers["retry-after"]) >= 1
        # Another company is not affected.
        assert (await open_one(other.headers, other_job)).status_code == 200


async def test_a_value_postgres_cannot_store_is_a_422_not_a_500(stack, api: ImporterApi):
    r = await api.http.post("/v1/ops/companies", json={"name": "nul\u0000name"}, headers=api.operator_headers)
    assert r.status_code == 422, r.text
    _assert_error_shape(r.json(), "validation_error")
