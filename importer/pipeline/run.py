"""One run of one import job: fetch pages → upsert products → images → complete.

Every phase resumes from what the job row and the image rows say is done, so a run started
after a crash, a hand-back or a race picks up where the last one stopped. Every write is fenced
by the run token: a run that has been replaced raises ``LeaseLost`` instead of writing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

from importer.db import jobs, products, rejections
from importer.db.pool import is_transient_db_error
from importer.errors import DependencyUnavailable, LeaseLost, ShutdownRequested
from importer.logs import get_logger
from importer.models import CatalogPage, Job, JobCounts, Phase, RejectionCode
from importer.pipeline.images import ImageTarget, store_batch
from importer.pipeline.pages import Finding, PageLedger
from importer.runtime import Runtime

log = get_logger(__name__)

_LOGGED_REJECTIONS_PER_PAGE = 50  # one line each; past it, one summary line per page


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
            outcome=done.outcome.value if done.outcome else None,
            products_rejected=done.products_rejected,
            rejections=done.rejection_counts,
            verification_issues=[i.get("code") for i in done.verification_issues],
            products_per_s=round(counts.products_imported / elapsed, 1) if elapsed > 0 else None,
            images_per_s=round(counts.images_stored / elapsed, 1) if elapsed > 0 else None,
        )
        await self.rt.events.publish(
            self.job.id,
            "status",
            status=done.status.value,
            counts=counts.as_dict(),
            outcome=done.outcome.value if done.outcome else None,
            products_rejected=done.products_rejected,
        )
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
        """Page through the catalog, each page's good products, rejections and checks in one transaction.

        Stops (with the job completing UNVERIFIED, not FAILED) when the pages cycle or run away;
        see ``pages.PageLedger`` for every rule and docs/records.md for the outcome semantics.
        """
        settings = self.rt.settings
        provider = self.rt.providers[self.job.provider]
        cursor = self.job.page_cursor
        counts = self.job.counts
        imported = counts.products_imported
        ledger = PageLedger(
            page_size=provider.page_size,
            max_pages=settings.max_catalog_pages,
            slack=settings.catalog_pages_slack,
            stale_limit=settings.catalog_stale_pages_limit,
            pages=counts.pages_fetched,
            records=counts.products_imported + self.job.products_rejected,
        )
        # One more turn than the page limit: the ledger's stop is what ends a runaway catalog.
        for _ in range(settings.max_catalog_pages + 1):
            stop = ledger.before_fetch(cursor)
            if stop is not None:
                await self._stop_paging(stop)
                return
            page = await provider.fetch_page(self.job.store_id, cursor, company_id=str(self.job.company_id))
            last = page.next_cursor is None
            findings = ledger.after_page(cursor, page)
            if last:
                findings += ledger.at_end(cursor)
            rejected = self._rejections(page)
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
                    await products.insert_rejected_images(
                        conn,
                        company_id=self.job.company_id,
                        import_source=self.job.import_source,
                        product_ids=ids,
                        products=page.products,
                    )
                ok = await rejections.record(
                    conn,
                    job_id=self.job.id,
                    run_token=self.token,
                    company_id=self.job.company_id,
                    page_cursor=cursor,
                    rejections=rejected,
                    detail_limit=settings.rejection_detail_limit,
                )
                ok = ok and await jobs.add_verification_issues(
                    conn, self.job.id, self.token, [f.as_json() for f in findings]
                )
                ok = ok and await jobs.checkpoint_page(
                    conn,
                    self.job.id,
                    self.token,
                    next_cursor=page.next_cursor,
                    products_added=len(page.products),
                    last_page=last,
                )
                if not ok:
                    raise LeaseLost("job was claimed by another run; page not recorded")
            self._log_page(cursor, rejected, findings)
            imported += len(page.products)
            await self.rt.events.publish(self.job.id, "progress", phase="products", products_imported=imported)
            if last:
                return
            cursor = page.next_cursor
            self._checkpoint_reached()
        raise AssertionError("unreachable: the page ledger stops the loop at max_catalog_pages")  # pragma: no cover

    def _rejections(self, page: CatalogPage) -> list[rejections.Rejection]:
        """The page's rejected products, plus the refused image URLs of its good products."""
        found = [rejections.Rejection(r.kind, r.code, r.reason, r.external_id, r.position) for r in page.rejected]
        if self.job.include_images:
            found += [
                rejections.Rejection("image", bad.code, bad.reason, product.external_id, bad.position)
                for product in page.products
                for bad in product.rejected_images
            ]
        return found

    def _log_page(self, cursor: str | None, rejected: list[rejections.Rejection], findings: list[Finding]) -> None:
        """Nothing rejected silently: every record and every page finding is logged, the first
        ``_LOGGED_REJECTIONS_PER_PAGE`` of a page one line each and the rest as one summary line
        (they are all in ``import_rejections`` and the job's counts)."""
        if len(rejected) > _LOGGED_REJECTIONS_PER_PAGE:
            codes: dict[str, int] = {}
            for r in rejected[_LOGGED_REJECTIONS_PER_PAGE:]:
                codes[r.code.value] = codes.get(r.code.value, 0) + 1
            log.warning(
                "records_rejected_more",
                count=len(rejected) - _LOGGED_REJECTIONS_PER_PAGE,
                codes=codes,
                page_cursor=cursor,
            )
        for r in rejected[:_LOGGED_REJECTIONS_PER_PAGE]:
            log.warning(
                "record_rejected",
                kind=r.kind,
                code=r.code.value,
                reason=r.reason,
                external_id=r.external_id,
                position=r.position,
                page_cursor=cursor,
            )
        for f in findings:
            log.warning("catalog_unverified", code=f.code.value, detail=f.detail, page_cursor=f.page_cursor)

    async def _stop_paging(self, stop: Finding) -> None:
        log.warning("catalog_paging_stopped", code=stop.code.value, detail=stop.detail, page_cursor=stop.page_cursor)
        async with transaction(self.rt) as conn:
            if not await jobs.end_products(conn, self.job.id, self.token, [stop.as_json()]):
                raise LeaseLost("job was claimed by another run; paging stop not recorded")

    async def store_images(self) -> None:
        """Store every PENDING image; an image host's transient failure spends that image's attempts.

        Passes over the PENDING images repeat until none is left: each pass either stores,
        rejects or counts one failed attempt for every image it sees, and an image out of
        attempts is rejected (image_unreachable), so at most ``image_max_attempts`` passes find
        work. Our own dependencies failing (S3, the database) still hands the job back.
        """
        settings = self.rt.settings
        stored_total = 0
        for attempt in range(settings.image_max_attempts + 1):
            if attempt:
                self._checkpoint_reached()
                await asyncio.sleep(settings.image_retry_delay)
            stored_total, waiting = await self._images_pass(stored_total)
            if not waiting:
                break
        async with transaction(self.rt) as conn:
            total, stored, rejected, thumbs = await products.image_counts(
                conn, company_id=self.job.company_id, import_source=self.job.import_source
            )
            counts = JobCounts(
                images_total=total, images_stored=stored, images_rejected=rejected, thumbnails_created=thumbs
            )
            if not await jobs.record_image_counts(conn, self.job.id, self.token, counts):
                raise LeaseLost("job was claimed by another run; counts not recorded")

    async def _images_pass(self, stored_total: int) -> tuple[int, int]:
        """One keyset pass over the PENDING images: (stored so far, left PENDING after a host failure)."""
        settings = self.rt.settings
        after: UUID | None = None
        waiting = 0
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
            by_id = {b.id: b.product_external_id for b in batch}
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
                reasons = {r[0]: r[2] for r in outcome.rejected}
                # only rows still PENDING change: a replayed batch counts nothing twice
                changed = await products.mark_images_rejected(conn, outcome.rejected)
                given_up = await products.record_image_failures(
                    conn, outcome.unreachable, max_attempts=settings.image_max_attempts
                )
                found = [
                    rejections.Rejection("image", code, reasons[image_id], by_id.get(image_id))
                    for image_id, code in changed
                ]
                found += [
                    rejections.Rejection("image", RejectionCode.IMAGE_UNREACHABLE, reason, by_id.get(image_id))
                    for image_id, reason in given_up
                ]
                if not await rejections.record(
                    conn,
                    job_id=self.job.id,
                    run_token=self.token,
                    company_id=self.job.company_id,
                    page_cursor=None,
                    rejections=found,
                    detail_limit=settings.rejection_detail_limit,
                ):
                    raise LeaseLost("job was claimed by another run; image rejections not recorded")
            for image_id, reason in given_up:
                log.warning(
                    "image_rejected", image_id=str(image_id), code=RejectionCode.IMAGE_UNREACHABLE.value, reason=reason
                )
            stored_total += len(outcome.stored)
            waiting += len(outcome.unreachable) - len(given_up)
            after = batch[-1].id
            if outcome.transient:
                raise outcome.transient[0]
            await self.rt.events.publish(self.job.id, "progress", phase="images", images_done=stored_total)
            self._checkpoint_reached()
        return stored_total, waiting
