"""Pagination checked, not believed: what a run learns from the pages it fetches.

Pure bookkeeping (no I/O), so every rule is unit-tested without a provider. Two kinds of
finding:

- **stops**, checked before each fetch: a cursor already fetched in this run (the provider's
  pages cycle) or a page count beyond ``max_catalog_pages`` or beyond the provider's declared
  total pages plus a slack, or ``stale_limit`` pages in a row that list only products already
  seen (the catalog runs away; the last rule is the one that bounds a provider that declares no
  total, such as Shopify's Link-header pagination with cursors that never repeat). The run
  stops fetching, imports what it has and the job completes UNVERIFIED, in bounded time, with
  the reason.
- **issues**, found on a page or at the end: a short page that is not the last, products
  repeated across pages (or on one page), a declared total that changes between pages or
  disagrees with what was counted. The job still imports every page; it completes UNVERIFIED.

Each code is reported once per run (the first occurrence, with its page cursor), so a runaway
catalog cannot grow the job row. A resumed run starts from the row's page and record counts;
the cursors and product ids seen before the resume are not carried over (a cycle is still
found within one cycle's length of pages after the resume).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from importer.models import CatalogPage, VerificationIssue

MAX_TRACKED_IDS = 1_000_000  # product ids remembered per run for the repeat check (~100 MB worst case)


@dataclass(frozen=True)
class Finding:
    code: VerificationIssue
    detail: str
    page_cursor: str | None

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code.value, "detail": self.detail, "page_cursor": self.page_cursor}


@dataclass
class PageLedger:
    """What one run has seen of a catalog's pages; ``pages`` and ``records`` include a resume's base."""

    page_size: int
    max_pages: int
    slack: int
    stale_limit: int = 5
    pages: int = 0
    records: int = 0
    seen_cursors: set[str | None] = field(default_factory=set)
    seen_ids: set[str] = field(default_factory=set)
    declared_total_pages: int | None = None
    declared_total: int | None = None
    reported: set[VerificationIssue] = field(default_factory=set)
    stale_pages: int = 0  # consecutive pages, up to the last one, that listed nothing new

    def _once(self, code: VerificationIssue, detail: str, cursor: str | None) -> list[Finding]:
        if code in self.reported:
            return []
        self.reported.add(code)
        return [Finding(code, detail, cursor)]

    def before_fetch(self, cursor: str | None) -> Finding | None:
        """A reason to stop fetching before ``cursor`` is requested, or None to go on."""
        if cursor in self.seen_cursors:
            return Finding(
                VerificationIssue.CURSOR_CYCLE,
                f"the provider's next-page cursor led back to a page already fetched, after {self.pages} pages",
                cursor,
            )
        if self.pages >= self.max_pages:
            return Finding(
                VerificationIssue.PAGE_LIMIT_EXCEEDED,
                f"stopped after {self.pages} pages, the most one import fetches",
                cursor,
            )
        if self.stale_pages >= self.stale_limit:
            return Finding(
                VerificationIssue.PAGE_LIMIT_EXCEEDED,
                f"stopped after {self.pages} pages: the last {self.stale_pages} listed only products already seen",
                cursor,
            )
        if self.declared_total_pages is not None and self.pages >= self.declared_total_pages + self.slack:
            return Finding(
                VerificationIssue.PAGE_LIMIT_EXCEEDED,
                f"stopped after {self.pages} pages; the provider declared {self.declared_total_pages}",
                cursor,
            )
        return None

    def after_page(self, cursor: str | None, page: CatalogPage) -> list[Finding]:
        """Record a fetched page; the issues it shows."""
        self.seen_cursors.add(cursor)
        self.pages += 1
        self.records += page.records
        found: list[Finding] = []
        last = page.next_cursor is None
        full = page.declared_per_page or self.page_size
        if page.empty_with_next:
            found += self._once(
                VerificationIssue.SHORT_PAGE,
                "an empty page still linked to a next page; paging ended there, the rest may be missing",
                cursor,
            )
        if not last and page.records < full:
            found += self._once(
                VerificationIssue.SHORT_PAGE,
                f"a page that is not the last held {page.records} records, not {full}",
                cursor,
            )
        ids = [p.external_id for p in page.products] + [r.external_id for r in page.rejected if r.external_id]
        fresh = sum(1 for i in set(ids) if i not in self.seen_ids)
        repeated = page.repeated_on_page + sum(1 for i in ids if i in self.seen_ids)
        # Only judged while every id is remembered: past the cap, "not seen" is unknown.
        if ids and fresh == 0 and len(self.seen_ids) < MAX_TRACKED_IDS:
            self.stale_pages += 1
        else:
            self.stale_pages = 0
        if len(self.seen_ids) < MAX_TRACKED_IDS:
            self.seen_ids.update(ids)
        if repeated:
            found += self._once(
                VerificationIssue.REPEATED_PRODUCTS,
                f"{repeated} products on this page were already listed by the catalog",
                cursor,
            )
        found += self._declared("total pages", page.declared_total_pages, cursor)
        found += self._declared("total products", page.declared_total, cursor)
        return found

    def _declared(self, what: str, value: int | None, cursor: str | None) -> list[Finding]:
        if value is None:
            return []
        first = self.declared_total_pages if what == "total pages" else self.declared_total
        if first is None:
            if what == "total pages":
                self.declared_total_pages = value
            else:
                self.declared_total = value
            return []
        if value != first:
            return self._once(
                VerificationIssue.TOTAL_MISMATCH,
                f"the provider's declared {what} changed from {first} to {value} between pages",
                cursor,
            )
        return []

    def at_end(self, cursor: str | None) -> list[Finding]:
        """After the last page: do the counts match what the provider declared?"""
        found: list[Finding] = []
        if self.declared_total is not None and self.records != self.declared_total:
            found += self._once(
                VerificationIssue.TOTAL_MISMATCH,
                f"the provider declared {self.declared_total} products; the pages listed {self.records}",
                cursor,
            )
        if self.declared_total_pages is not None and self.pages != max(self.declared_total_pages, 1):
            found += self._once(
                VerificationIssue.TOTAL_MISMATCH,
                f"the provider declared {self.declared_total_pages} pages; the catalog ended after {self.pages}",
                cursor,
            )
        return found
