"""The page checks: cycles and runaway catalogs stop, pages that do not add up are reported."""

from __future__ import annotations

from importer.models import CatalogPage, ProductRecord, RejectedRecord, RejectionCode, VerificationIssue
from importer.pipeline.pages import PageLedger


def _product(i: int) -> ProductRecord:
    return ProductRecord(str(i), f"t{i}", "", 100, "USD", ())


def _page(ids: range, nxt: str | None, **declared: int | None) -> CatalogPage:
    products = [_product(i) for i in ids]
    return CatalogPage(products=products, next_cursor=nxt, records=len(products), **declared)  # type: ignore[arg-type]


def _ledger(page_size: int = 10, max_pages: int = 1000, slack: int = 2, pages: int = 0, records: int = 0) -> PageLedger:
    return PageLedger(page_size=page_size, max_pages=max_pages, slack=slack, pages=pages, records=records)


def test_an_honest_catalog_has_no_findings() -> None:
    ledger = _ledger()
    found = []
    cursor = None
    for n, nxt in enumerate(["2", "3", None]):
        assert ledger.before_fetch(cursor) is None
        page = _page(range(n * 10, n * 10 + (10 if nxt else 5)), nxt, declared_total_pages=3, declared_total=25)
        found += ledger.after_page(cursor, page)
        cursor = nxt
    found += ledger.at_end("3")
    assert found == []


def test_a_cursor_seen_before_stops_the_run() -> None:
    ledger = _ledger()
    ledger.after_page(None, _page(range(10), "a"))
    ledger.after_page("a", _page(range(10, 20), "b"))
    assert ledger.before_fetch("b") is None
    ledger.after_page("b", _page(range(20, 30), "a"))
    stop = ledger.before_fetch("a")
    assert stop is not None and stop.code == VerificationIssue.CURSOR_CYCLE and stop.page_cursor == "a"
    assert "3 pages" in stop.detail


def test_runaway_pages_stop_at_the_declared_total_plus_slack() -> None:
    ledger = _ledger(slack=2)
    cursor: str | None = None
    for n in range(10):
        stop = ledger.before_fetch(cursor)
        if stop is not None:
            break
        # the provider's total grows with every page: it never ends on its own
        ledger.after_page(cursor, _page(range(n * 10, n * 10 + 10), str(n + 2), declared_total_pages=n + 2))
        cursor = str(n + 2)
    assert stop is not None and stop.code == VerificationIssue.PAGE_LIMIT_EXCEEDED
    assert ledger.pages == 2 + 2  # first declared total (2) plus the slack


def test_runaway_pages_stop_at_max_pages_without_a_declared_total() -> None:
    ledger = _ledger(max_pages=5)
    for n in range(5):
        assert ledger.before_fetch(str(n)) is None
        ledger.after_page(str(n), _page(range(n * 10, n * 10 + 10), str(n + 1)))
    stop = ledger.before_fetch("5")
    assert stop is not None and stop.code == VerificationIssue.PAGE_LIMIT_EXCEEDED


def test_a_resumed_run_counts_the_pages_before_it() -> None:
    ledger = _ledger(max_pages=5, pages=5)
    stop = ledger.before_fetch("6")
    assert stop is not None and stop.code == VerificationIssue.PAGE_LIMIT_EXCEEDED


def test_a_short_page_that_is_not_the_last_is_reported_once() -> None:
    ledger = _ledger()
    found = ledger.after_page(None, _page(range(7), "2"))
    found += ledger.after_page("2", _page(range(7, 12), "3"))
    assert [f.code for f in found] == [VerificationIssue.SHORT_PAGE]
    assert "7 records" in found[0].detail


def test_the_declared_page_size_wins_over_the_requested_one() -> None:
    ledger = _ledger(page_size=100)
    assert ledger.after_page(None, _page(range(10), "2", declared_per_page=10)) == []


def test_a_short_last_page_is_fine() -> None:
    assert _ledger().after_page(None, _page(range(3), None)) == []


def test_products_repeated_across_pages_or_on_one_page() -> None:
    ledger = _ledger()
    assert ledger.after_page(None, _page(range(10), "2")) == []
    found = ledger.after_page("2", _page(range(5, 15), "3"))
    assert [f.code for f in found] == [VerificationIssue.REPEATED_PRODUCTS] and "5 products" in found[0].detail
    on_page = _ledger().after_page(None, CatalogPage([_product(1)], None, records=2, repeated_on_page=1))
    assert [f.code for f in on_page] == [VerificationIssue.REPEATED_PRODUCTS]


def test_rejected_records_count_towards_repeats_and_totals() -> None:
    ledger = _ledger()
    bad = RejectedRecord("product", 0, "9", RejectionCode.INVALID_FIELD, "x")
    page = CatalogPage([_product(1)], None, rejected=[bad], records=2, declared_total=2, declared_total_pages=1)
    assert ledger.after_page(None, page) == [] and ledger.at_end(None) == []


def test_a_declared_total_that_disagrees_with_the_count() -> None:
    ledger = _ledger()
    ledger.after_page(None, _page(range(10), "2", declared_total=30, declared_total_pages=2))
    ledger.after_page("2", _page(range(10, 20), None, declared_total=30, declared_total_pages=2))
    [found] = ledger.at_end("2")
    assert found.code == VerificationIssue.TOTAL_MISMATCH and "30" in found.detail and "20" in found.detail


def test_a_declared_total_that_changes_between_pages() -> None:
    ledger = _ledger()
    ledger.after_page(None, _page(range(10), "2", declared_total_pages=2))
    [found] = ledger.after_page("2", _page(range(10, 20), None, declared_total_pages=3))
    assert found.code == VerificationIssue.TOTAL_MISMATCH and "changed from 2 to 3" in found.detail


def test_catalog_ending_before_its_declared_pages() -> None:
    ledger = _ledger()
    ledger.after_page(None, _page(range(0), None, declared_total_pages=4))
    [found] = ledger.at_end(None)
    assert found.code == VerificationIssue.TOTAL_MISMATCH


def test_an_empty_catalog_is_one_empty_page() -> None:
    ledger = _ledger()
    assert ledger.after_page(None, _page(range(0), None, declared_total_pages=0, declared_total=0)) == []
    assert ledger.at_end(None) == []


def test_a_resumed_run_compares_totals_from_its_base() -> None:
    ledger = _ledger(pages=1, records=10)
    ledger.after_page("2", _page(range(10, 20), None, declared_total=20, declared_total_pages=2))
    assert ledger.at_end("2") == []


def test_pages_of_nothing_new_stop_a_catalog_that_declares_no_total() -> None:
    """Shopify-style pagination: fresh cursors forever, the same products wrapping around."""
    ledger = PageLedger(page_size=10, max_pages=100_000, slack=2, stale_limit=3)
    for n in range(3):  # the whole catalog, once
        assert ledger.before_fetch(f"c{n}") is None
        ledger.after_page(f"c{n}", _page(range(n * 10, n * 10 + 10), f"c{n + 1}"))
    for n in range(3, 6):  # it wraps around: new cursors, old products
        assert ledger.before_fetch(f"c{n}") is None
        ledger.after_page(f"c{n}", _page(range((n - 3) * 10, (n - 3) * 10 + 10), f"c{n + 1}"))
    stop = ledger.before_fetch("c6")
    assert stop is not None
    assert stop.code is VerificationIssue.PAGE_LIMIT_EXCEEDED
    assert "only products already seen" in stop.detail


def test_one_page_of_repeats_between_new_pages_does_not_stop_the_run() -> None:
    ledger = PageLedger(page_size=10, max_pages=100_000, slack=2, stale_limit=2)
    ledger.after_page(None, _page(range(10), "a"))
    ledger.after_page("a", _page(range(10), "b"))  # nothing new: one stale page
    ledger.after_page("b", _page(range(10, 20), "c"))  # something new resets the run of stale pages
    ledger.after_page("c", _page(range(10, 20), "d"))
    assert ledger.before_fetch("d") is None


def test_an_empty_page_that_links_to_a_next_one_is_reported() -> None:
    """Shopify declares no totals: without this, a glitch page ``[]`` + ``rel=next`` would end
    the import as CLEAN with the rest of the catalog silently missing."""
    ledger = _ledger()
    ledger.after_page(None, _page(range(10), "a"))
    found = ledger.after_page("a", CatalogPage(products=[], next_cursor=None, records=0, empty_with_next=True))
    assert [f.code for f in found] == [VerificationIssue.SHORT_PAGE]
