"""One run of one import job: fetch pages → upsert products → images → complete.

Every phase resumes from what the job row and the image rows say is done, so a run started
after a crash, a hand-back or a race picks up where the last one stopped. Every write is fenced
by the run token: a run that has been replaced raises ``LeaseLost`` instead of writing.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

from importer.db import jobs, products
from importer.db.pool import is_transient_db_error
from importer.errors import DependencyUnavailable, LeaseLost, MalformedCatalog, ShutdownRequested
from importer.logs import get_logger
from importer.models import Job, JobCounts, Phase
from importer.pipeline.images import ImageTarget, store_batch
from importer.runtime import Runtime

log = get_logger(__name__)


@contextlib.asynccontextmanager
async def transaction(rt: Runtime) -> AsyncIterator[Any]:
    """A pooled connection in a transaction; an unreachable database becomes a transient error."""
    try:
        async with rt.db.acquire() as conn, conn.transaction():
            yield conn
    except Exception as exc:
        if is_transient_db_error(exc):
            raise DependencyUnavailable(f"database unavailable: {exc!r}") from exc
        raise


class ImportRun:
    def __init__(self, rt: Runtime, job: Job, run_token: UUID) -> None:
        self.rt = rt
        self.job = job
        self.token = run_token

    async def execute(self) -> Job:
        started = time.monotonic()
        if self.job.phase in (Phase.QUEUED, Phase.PRODUCTS):
            await self._timed("products", self.fetch_products)
        if self.job.include_images:
            await self._timed("images", self.store_images)
        async with transaction(self.rt) as conn:
            done = await jobs.complete(conn, self.job.id, self.token)
        if done is None:
            raise LeaseLost("job was claimed by another run before completion")
        elapsed = time.monotonic() - started
        counts = done.counts
        log.info(
            "job_completed",
            duration=round(elapsed, 3),
            products=counts.products_imported,
            images_stored=counts.images_stored,
            images_rejected=counts.images_rejected,
            products_per_s=round(counts.products_imported / elapsed, 1) if elapsed > 0 else None,
            images_per_s=round(counts.images_stored / elapsed, 1) if elapsed > 0 else None,
        )
        await self.rt.events.publish(self.job.id, "status", status=done.status.value, counts=counts.as_dict())
        return done

    async def _timed(self, phase: str, body: Any) -> None:
        started = time.monotonic()
        log.info("phase_started", phase=phase)
        await self.rt.events.publish(self.job.id, "phase", phase=phase)
        await body()
        log.info("phase_finished", phase=phase, duration=round(time.monotonic() - started, 3))

    def _checkpoint_reached(self) -> None:
        if self.rt.shutdown.is_set():
            raise ShutdownRequested("worker shutting down; job handed back at a checkpoint")

    async def fetch_products(self) -> None:
        provider = self.rt.providers[self.job.provider]
        cursor = self.job.page_cursor
        imported = self.job.counts.products_imported
        for _ in range(self.rt.settings.max_catalog_pages):
            page = await provider.fetch_page(self.job.store_id, cursor, company_id=str(self.job.company_id))
            last = page.next_cursor is None
            async with transaction(self.rt) as conn:
                ids = await products.upsert_products(
                    conn,
                    company_id=self.job.company_id,
                    import_source=self.job.import_source,
                    job_id=self.job.id,
                    products=page.products,
                )
                if self.job.include_images:
                    await products.insert_images(
                        conn,
                        company_id=self.job.company_id,
                        import_source=self.job.import_source,
                        product_ids=ids,
                        products=page.products,
                    )
                ok = await jobs.checkpoint_page(
                    conn,
                    self.job.id,
                    self.token,
                    next_cursor=page.next_cursor,
                    products_added=len(page.products),
                    last_page=last,
                )
                if not ok:
                    raise LeaseLost("job was claimed by another run; page not recorded")
            imported += len(page.products)
            await self.rt.events.publish(self.job.id, "progress", phase="products", products_imported=imported)
            if last:
                return
            cursor = page.next_cursor
            self._checkpoint_reached()
        raise MalformedCatalog(
            f"store {self.job.store_id}: more than {self.rt.settings.max_catalog_pages} pages; stopping"
        )

    async def store_images(self) -> None:
        settings = self.rt.settings
        after: UUID | None = None
        stored_total = 0
        # Each pass moves the keyset cursor forward past its batch, so the loop ends after at
        # most (images / batch) passes; the bound below only guards against a logic error.
        for _ in range(10_000_000 // settings.image_batch_size + 1):
            async with transaction(self.rt) as conn:
                batch = await products.pending_images(
                    conn,
                    company_id=self.job.company_id,
                    import_source=self.job.import_source,
                    after=after,
                    limit=settings.image_batch_size,
                )
            if not batch:
                break
            targets = [
                ImageTarget(
                    image_id=b.id,
                    company_id=self.job.company_id,
                    provider=self.job.provider.value,
                    store_id=self.job.store_id,
                    external_id=b.product_external_id,
                    url=b.source_url,
                )
                for b in batch
            ]
            outcome = await store_batch(
                targets,
                client=self.rt.image_client,
                store=self.rt.store,
                limits=self.rt.image_limits,
                concurrency=settings.image_concurrency,
                # Only a run after another (resume, race, re-import) can find objects already there.
                check_existing=self.job.attempts > 1,
            )
            async with transaction(self.rt) as conn:
                if not await jobs.heartbeat(conn, self.job.id, self.token):
                    raise LeaseLost("job was claimed by another run; image batch not recorded")
                await products.mark_images_stored(
                    conn,
                    [
                        (s.image_id, s.original_key, s.thumbnail_key, s.content_type, s.byte_size)
                        for s in outcome.stored
                    ],
                )
                await products.mark_images_rejected(conn, outcome.rejected)
            stored_total += len(outcome.stored)
            after = batch[-1].id
            if outcome.transient:
                raise outcome.transient[0]
            await self.rt.events.publish(self.job.id, "progress", phase="images", images_done=stored_total)
            self._checkpoint_reached()
        async with transaction(self.rt) as conn:
            total, stored, rejected, thumbs = await products.image_counts(
                conn, company_id=self.job.company_id, import_source=self.job.import_source
            )
            counts = JobCounts(
                images_total=total, images_stored=stored, images_rejected=rejected, thumbnails_created=thumbs
            )
            if not await jobs.record_image_counts(conn, self.job.id, self.token, counts):
                raise LeaseLost("job was claimed by another run; counts not recorded")
