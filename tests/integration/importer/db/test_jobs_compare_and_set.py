"""The reconciler's writes are compare-and-set on the row it read: a change in between wins.

Exercised directly against the real Postgres of the session stack, the race made explicit: read
a candidate, let a worker claim / renew / hand it back, then write with what was read.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio

from importer.db import jobs, sweeps
from tests.support.importer_api import ImporterApi

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture
async def db(stack) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(stack.database_url)
    try:
        yield conn
    finally:
        await conn.close()


async def _abandoned(db: asyncpg.Connection, company_id: str) -> tuple[uuid.UUID, uuid.UUID]:
    """An IN_PROGRESS row whose run went quiet five minutes ago (its worker died)."""
    job_id, token = uuid.uuid4(), uuid.uuid4()
    await db.execute(
        """INSERT INTO product_import_jobs (id, company_id, provider, store_id, status, phase, started_at,
                                            run_started_at, heartbeat_at, created_at, updated_at, worker_id,
                                            attempts, run_token)
           VALUES ($1, $2, 'roastify', $3, 'IN_PROGRESS', 'products', now() - interval '5 minutes',
                   now() - interval '5 minutes', now() - interval '5 minutes', now() - interval '5 minutes',
                   now() - interval '5 minutes', 'dead', 1, $4)""",
        job_id,
        uuid.UUID(company_id),
        f"cas-{job_id}",
        token,
    )
    return job_id, token


async def _seen(db: asyncpg.Connection, job_id: uuid.UUID) -> sweeps.SeenJob:
    candidates = await sweeps.list_orphan_candidates(db, min_age_s=60, limit=100_000)
    row = next(r for r in candidates if r["id"] == job_id)
    return sweeps.SeenJob.from_row(row)


async def _cancel(db: asyncpg.Connection, job_id: uuid.UUID) -> None:
    await db.execute("UPDATE product_import_jobs SET status = 'CANCELLED', run_token = NULL WHERE id = $1", job_id)


async def test_a_claim_between_the_read_and_the_mark_is_never_overwritten(stack, api: ImporterApi, db):
    tenant = await api.create_company("cas-claim")
    job_id, _ = await _abandoned(db, tenant.id)
    try:
        seen = await _seen(db, job_id)
        new_token = uuid.uuid4()
        claimed = await jobs.claim(db, job_id, run_token=new_token, worker_id="taker")  # the race
        assert claimed is not None

        assert await sweeps.mark_requeued(db, [seen]) == []
        row = await db.fetchrow("SELECT status, run_token, worker_id FROM product_import_jobs WHERE id = $1", job_id)
        assert (row["status"], row["run_token"], row["worker_id"]) == ("IN_PROGRESS", new_token, "taker")
    finally:
        await _cancel(db, job_id)


async def test_an_unchanged_row_is_marked_pending_without_an_owner(stack, api: ImporterApi, db):
    tenant = await api.create_company("cas-mark")
    job_id, _ = await _abandoned(db, tenant.id)
    try:
        seen = await _seen(db, job_id)
        assert await sweeps.mark_requeued(db, [seen]) == [job_id]
        row = await db.fetchrow("SELECT status, run_token, worker_id FROM product_import_jobs WHERE id = $1", job_id)
        assert (row["status"], row["run_token"], row["worker_id"]) == ("PENDING", None, None)
        assert await sweeps.mark_requeued(db, [seen]) == [], "a second mark with the same snapshot matches nothing"
    finally:
        await _cancel(db, job_id)


async def test_a_run_that_started_and_handed_back_in_between_is_not_marked(stack, api: ImporterApi, db):
    """PENDING when read and PENDING again when written, but not the same row version (A-B-A)."""
    tenant = await api.create_company("cas-aba")
    job_id = uuid.uuid4()
    await db.execute(
        """INSERT INTO product_import_jobs (id, company_id, provider, store_id, created_at, updated_at)
           VALUES ($1, $2, 'roastify', $3, now() - interval '5 minutes', now() - interval '5 minutes')""",
        job_id,
        uuid.UUID(tenant.id),
        f"cas-{job_id}",
    )
    try:
        seen = await _seen(db, job_id)
        assert seen.status == "PENDING"
        token = uuid.uuid4()
        assert await jobs.claim(db, job_id, run_token=token, worker_id="w") is not None
        assert await jobs.release(db, job_id, token, reason="deferred: rate limited")

        assert await sweeps.mark_requeued(db, [seen]) == []
        assert await db.fetchval("SELECT error FROM product_import_jobs WHERE id = $1", job_id) == (
            "deferred: rate limited"
        )
    finally:
        await _cancel(db, job_id)


async def test_a_heartbeat_between_the_read_and_the_stall_verdict_saves_the_job(stack, api: ImporterApi, db):
    tenant = await api.create_company("cas-stall")
    job_id, token = await _abandoned(db, tenant.id)
    try:
        stale = await sweeps.list_stall_candidates(db, older_than_s=60, limit=100_000)
        seen = sweeps.SeenJob.from_row(next(r for r in stale if r["id"] == job_id))
        assert await jobs.heartbeat(db, job_id, token)  # the run was alive after all

        assert await sweeps.fail_stalled(db, [seen], older_than_s=60) == []
        assert await db.fetchval("SELECT status FROM product_import_jobs WHERE id = $1", job_id) == "IN_PROGRESS"

        fresh = await db.fetchrow("SELECT * FROM product_import_jobs WHERE id = $1", job_id)
        assert await sweeps.fail_stalled(db, [sweeps.SeenJob.from_row(fresh)], older_than_s=60) == [], (
            "a heartbeat younger than the limit is never failed, even by an exact snapshot"
        )
    finally:
        await _cancel(db, job_id)


async def test_a_stalled_row_unchanged_since_the_read_is_failed(stack, api: ImporterApi, db):
    tenant = await api.create_company("cas-stalled")
    job_id, _ = await _abandoned(db, tenant.id)
    try:
        stale = await sweeps.list_stall_candidates(db, older_than_s=60, limit=100_000)
        seen = sweeps.SeenJob.from_row(next(r for r in stale if r["id"] == job_id))
        failed = await sweeps.fail_stalled(db, [seen], older_than_s=60)
        assert [row["id"] for row in failed] == [job_id]
        row = await db.fetchrow("SELECT status, error, run_token FROM product_import_jobs WHERE id = $1", job_id)
        assert row["status"] == "FAILED" and row["error"].startswith("timeout:") and row["run_token"] is None
    finally:
        await _cancel(db, job_id)


async def test_pages_follow_the_keyset_and_cover_every_candidate(stack, api: ImporterApi, db):
    tenant = await api.create_company("cas-pages")
    ids = [uuid.uuid4() for _ in range(7)]
    for i, job_id in enumerate(ids):
        await db.execute(
            """INSERT INTO product_import_jobs (id, company_id, provider, store_id, created_at, updated_at)
               VALUES ($1, $2, 'roastify', $3, now() - interval '10 days' + make_interval(secs => $4),
                       now() - interval '10 days')""",
            job_id,
            uuid.UUID(tenant.id),
            f"page-{job_id}",
            i // 2,  # pairs share a created_at: the id breaks the tie
        )
    try:
        seen: list[uuid.UUID] = []
        after: sweeps.Keyset | None = None
        for _ in range(100):  # bounded: every candidate of the database, three at a time
            page = await sweeps.list_orphan_candidates(db, min_age_s=60, limit=3, after=after)
            if not page:
                break
            seen.extend(r["id"] for r in page)
            after = (page[-1]["created_at"], page[-1]["id"])
        mine = [job_id for job_id in seen if job_id in ids]
        assert sorted(mine) == sorted(ids) and len(mine) == len(ids), "each row once, none skipped"
        assert len(seen) == len(set(seen))
    finally:
        await db.execute("UPDATE product_import_jobs SET status = 'CANCELLED' WHERE id = ANY($1::uuid[])", ids)
