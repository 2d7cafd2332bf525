"""A database that refuses writes (read-only here; out of disk or memory alike) makes intake
answer 503 with Retry-After, never 500, and makes the worker wait and retry, never fail the job
or log it as an internal error: the same work succeeds once the database is back."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from tests.support.importer_api import TERMINAL, FakeProvider, ImporterApi, Tenant
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration


async def _drop_api_connections(conn: asyncpg.Connection, database: str) -> None:
    """The database default applies to new sessions: make the API's pool open new ones."""
    await conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        database,
    )


async def test_read_only_database_is_a_503_with_retry_after(stack, api: ImporterApi):
    tenant = await api.create_company("read-only")
    conn = await asyncpg.connect(stack.database_url)  # opened before: its session stays writable
    database = await conn.fetchval("SELECT current_database()")
    quoted = '"' + database.replace('"', '""') + '"'
    try:
        await conn.execute(f"ALTER DATABASE {quoted} SET default_transaction_read_only = on")
        await _drop_api_connections(conn, database)
        answers = []
        for i in range(5):
            r = await api.http.post(
                "/v1/imports", json={"provider": "roastify", "store_id": f"st_ro_{i}"}, headers=tenant.headers
            )
            answers.append(r)
        probe = await asyncpg.connect(stack.database_url)
        try:  # the refusal was real: a new session is read-only
            assert await probe.fetchval("SHOW default_transaction_read_only") == "on"
        finally:
            await probe.close()
    finally:
        await conn.execute(f"ALTER DATABASE {quoted} RESET default_transaction_read_only")
        await _drop_api_connections(conn, database)
        await conn.close()
    for r in answers:
        assert r.status_code == 503, r.text
        assert int(r.headers["retry-after"]) >= 1
        assert r.json()["code"] == "service_unavailable"
    assert await conn_rows(stack, tenant.id) == 0
    # Writable again: the same request is accepted (bounded: the pool reconnects on first use).
    for _ in range(20):
        r = await api.http.post(
            "/v1/imports", json={"provider": "roastify", "store_id": "st_ro_0"}, headers=tenant.headers
        )
        if r.status_code == 202:
            break
        assert r.status_code == 503, r.text
        await asyncio.sleep(0.25)
    assert r.status_code == 202, r.text


async def conn_rows(stack, company_id: str) -> int:
    conn = await asyncpg.connect(stack.database_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM product_import_jobs WHERE company_id = $1", company_id))
    finally:
        await conn.close()


async def _status_despite_reconnects(api: ImporterApi, tenant: Tenant, job_id: str) -> str | None:
    """The job's status once terminal; None while running or while the API's pool reconnects (503)."""
    r = await api.http.get(f"/v1/imports/{job_id}", headers=tenant.headers)
    if r.status_code == 503:
        return None
    r.raise_for_status()
    status = str(r.json()["status"])
    return status if status in TERMINAL else None


async def test_worker_retries_while_the_database_refuses_writes(stack, api: ImporterApi, provider: FakeProvider):
    tenant = await api.create_company("read-only-worker")
    store = await provider.create_store("roastify", products=5, images_per_product=0)
    job_id = await api.submit(tenant, "roastify", store)  # written before the refusal; no worker yet
    conn = await asyncpg.connect(stack.database_url)
    database = await conn.fetchval("SELECT current_database()")
    quoted = '"' + database.replace('"', '""') + '"'
    try:
        await conn.execute(f"ALTER DATABASE {quoted} SET default_transaction_read_only = on")
        await _drop_api_connections(conn, database)
        worker = await asyncio.to_thread(
            stack.start_worker, env={"IMPORTER_RETRY_BACKOFF_BASE": "0.5", "IMPORTER_RETRY_BACKOFF_MAX": "1"}
        )

        async def refused_and_deferred() -> bool:
            text = worker.log_path.read_text(errors="replace")
            return "ReadOnlySQLTransactionError" in text and "job_claim_deferred" in text

        await wait_for(refused_and_deferred, timeout=60, what="the worker to defer the job on a read-only database")
    finally:
        await conn.execute(f"ALTER DATABASE {quoted} RESET default_transaction_read_only")
        await _drop_api_connections(conn, database)
        await conn.close()
    status = await wait_for(lambda: _status_despite_reconnects(api, tenant, job_id), timeout=90, what="the job to end")
    assert status == "COMPLETED"
    log = worker.log_path.read_text(errors="replace")
    assert "job_unexpected_error" not in log and "job_internal_error" not in log
