"""What went in must come out, exactly once: the data-loss checker's arithmetic.

Jepsen's rule applied to imports: every job the API acknowledged must reach a terminal state,
every product of a catalog whose job completed must exist exactly once, every image the
catalog marks as good must be stored once with one original and one thumbnail object in S3.
A duplicate is a failure as much as a loss is.

This module is pure: plain data in (lab.checker_inputs), a CheckReport out. It never opens a
connection, so it is tested on crafted inputs and can re-check recorded inputs offline; the
gathering from Postgres, S3 and the fake provider lives in lab.gather.

Scope rules (each deliberate):
- Missing products/images are counted only for sources (company, provider, store) with at
  least one COMPLETED job that was expected to succeed. A lost or failed job is already a
  failure at the job level; counting its whole catalog again as missing would double-count.
  Those sources are listed in ``sources_unchecked`` with the reason, never silently skipped.
- Duplicates and unexpected rows are counted everywhere, whatever the job's fate.
- A store the caller names as expected to fail (its expected-catalog document says the job
  must end FAILED) must end FAILED with a reason; that is an expected failure, not a loss.
  Ending COMPLETED is an ``expected_failure_missed`` (the importer swallowed what it must not).
- A bad record (a product or image the document marks bad, with its code) is rejected, never
  imported, and never fails its job: a job of such a store that ended FAILED counts in
  ``records_failed_jobs``; a COMPLETED one must say so (``outcome``: WITH_REJECTIONS, or what
  the document declares, e.g. UNVERIFIED) and count every rejection under its code
  (``rejection_counts``): fewer is ``rejections_missing``, more or another code is
  ``rejections_unexpected``. These totals are null in a run whose catalogs hold no bad
  record, so a criterion on them is "not measured" there rather than trivially met.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable

from lab.checker_inputs import (
    CheckInputs,
    CheckReport,
    ExpectedCatalog,
    Finding,
    ImageRow,
    JobRow,
    original_key,
    thumbnail_key,
)
from lab.rundir import TERMINAL_STATUSES, AcknowledgedJob

__all__ = ["check", "stores_expected_to_fail"]

Source = tuple[str, str, str]  # (company_id, provider, store_id)
Pair = tuple[str, str, str, str]  # (company_id, import_source, external_id, url)


def stores_expected_to_fail(catalogs: Iterable[ExpectedCatalog]) -> set[str]:
    """Stores whose expected-catalog document says the job must end FAILED.

    Bad records alone never make that list: one bad record is rejected and the job completes.
    """
    return {c.store_id for c in catalogs if c.job_status == "FAILED"}


def check(inputs: CheckInputs, *, expected_to_fail: Iterable[str] = ()) -> CheckReport:
    """Compare what was acknowledged and catalogued with what the database and S3 hold."""
    report = CheckReport()
    failing_stores = set(expected_to_fail)
    jobs_by_id = {job.id: job for job in inputs.jobs}
    companies = {ack.company_id for ack in inputs.acknowledged} | set(inputs.companies)

    completed_sources, touched_sources = _check_jobs(inputs, report, jobs_by_id, failing_stores, companies)
    include_images = _include_images_by_source(inputs)
    _check_products(inputs, report, completed_sources, touched_sources, failing_stores, companies)
    _check_images(inputs, report, completed_sources, touched_sources, include_images, companies)
    _check_records(inputs, report, jobs_by_id, failing_stores)
    _totals(report)
    return report


# --- jobs -----------------------------------------------------------------------------------


def _job_finding(kind: str, ack: AcknowledgedJob, status: str | None, detail: str = "") -> Finding:
    return Finding(
        kind=kind,
        job_id=ack.job_id,
        company_id=ack.company_id,
        source=ack.source,
        status=status or "",
        detail=detail,
    )


def _check_jobs(
    inputs: CheckInputs,
    report: CheckReport,
    jobs_by_id: dict[str, JobRow],
    failing_stores: set[str],
    companies: set[str],
) -> tuple[set[Source], set[Source]]:
    """Classify every acknowledged job; return the sources with a good completion, and all."""
    completed: set[Source] = set()
    touched: set[Source] = set()
    acknowledged_ids: Counter[str] = Counter(ack.job_id for ack in inputs.acknowledged)
    t = report.totals
    t["acknowledged"] = len(acknowledged_ids)
    for name in ("completed", "failed", "cancelled", "lost", "expected_failures", "expected_failure_missed"):
        t[name] = 0
    t["expected_to_succeed"] = 0
    t["succeeded"] = 0

    t["acknowledged_twice"] = 0
    for job_id, times in acknowledged_ids.items():
        if times > 1:
            t["acknowledged_twice"] += 1
            ack = next(a for a in inputs.acknowledged if a.job_id == job_id)
            report.add("acknowledged_twice", _job_finding("acknowledged_twice", ack, None, f"{times} times"))

    seen: set[str] = set()
    for ack in inputs.acknowledged:
        if ack.job_id in seen:
            continue
        seen.add(ack.job_id)
        source: Source = (ack.company_id, ack.provider, ack.store_id)
        touched.add(source)
        row = jobs_by_id.get(ack.job_id)
        status = row.status if row else None
        error = ((row.error if row else None) or "").strip()
        should_fail = ack.store_id in failing_stores
        if not should_fail:
            t["expected_to_succeed"] += 1

        if row is None or status not in TERMINAL_STATUSES:
            t["lost"] += 1
            detail = "no job row" if row is None else f"still {status} after the drain"
            report.add("jobs_lost", _job_finding("lost", ack, status, detail))
            continue
        if should_fail:
            if status == "FAILED" and error:
                t["expected_failures"] += 1
                report.add("expected_failures", _job_finding("expected_failure", ack, status, error))
            elif status == "FAILED":
                t["failed"] += 1
                report.add("jobs_failed", _job_finding("failed", ack, status, "FAILED without a reason"))
            else:
                t["expected_failure_missed"] += 1
                detail = f"ended {status}; its catalog says the job must fail"
                report.add("expected_failure_missed", _job_finding("expected_failure_missed", ack, status, detail))
            continue
        if status == "COMPLETED":
            t["completed"] += 1
            t["succeeded"] += 1
            completed.add(source)
        elif status == "CANCELLED":
            t["cancelled"] += 1
            report.add("jobs_failed", _job_finding("cancelled", ack, status, error or "cancelled"))
        else:
            t["failed"] += 1
            report.add("jobs_failed", _job_finding("failed", ack, status, error or "FAILED without a reason"))
            report.failure_reasons[_reason_class(error)] += 1

    t["unexpected_jobs"] = 0
    for job in inputs.jobs:
        if job.id not in seen and job.company_id in companies:
            t["unexpected_jobs"] += 1
            report.add(
                "jobs_unexpected",
                Finding(
                    kind="unexpected_job",
                    job_id=job.id,
                    company_id=job.company_id,
                    source=f"{job.provider}:{job.store_id}",
                    status=job.status,
                    detail="job row the client was never acknowledged for",
                ),
            )
    for source in sorted(touched - completed):
        company, provider, store = source
        reason = "expected to fail" if store in failing_stores else "no job of this source completed"
        report.sources_unchecked.append({"company_id": company, "source": f"{provider}:{store}", "reason": reason})
    return completed, touched


def _reason_class(error: str) -> str:
    """First line, digits folded, so a thousand timeouts group as one reason."""
    first = (error.splitlines() or ["(no reason)"])[0].strip() or "(no reason)"
    return re.sub(r"\d+", "#", first)[:160]


def _include_images_by_source(inputs: CheckInputs) -> dict[Source, bool]:
    """Images are expected when any job of the source asked for them."""
    out: dict[Source, bool] = {}
    for job in inputs.jobs:
        key = (job.company_id, job.provider, job.store_id)
        out[key] = out.get(key, False) or job.include_images
    return out


# --- products -------------------------------------------------------------------------------


def _check_products(
    inputs: CheckInputs,
    report: CheckReport,
    completed: set[Source],
    touched: set[Source],
    failing_stores: set[str],
    companies: set[str],
) -> None:
    rows = Counter((p.company_id, p.import_source, p.external_id) for p in inputs.products if p.company_id in companies)
    expected_good: set[tuple[str, str, str]] = set()
    malformed: set[tuple[str, str, str]] = set()
    report.totals["catalogs_missing"] = 0
    for company, provider, store in sorted(touched):
        catalog = inputs.catalogs.get(store)
        if catalog is None:
            report.totals["catalogs_missing"] += 1
            finding = Finding(kind="catalog_missing", company_id=company, source=f"{provider}:{store}")
            report.add("catalogs_missing", finding)
            continue
        for product in catalog.products:
            key = (company, f"{provider}:{store}", product.external_id)
            (malformed if product.absent else expected_good).add(key)

    t = report.totals
    t["products_expected"] = 0
    t["products_missing"] = 0
    for company, provider, store in sorted(completed):
        catalog = inputs.catalogs.get(store)
        if catalog is None:
            continue
        for product in catalog.products:
            if product.absent:
                continue
            t["products_expected"] += 1
            key = (company, f"{provider}:{store}", product.external_id)
            if rows[key] == 0:
                t["products_missing"] += 1
                report.add("products_missing", _product_finding("missing_product", key))

    t["products_found"] = sum(rows.values())
    t["products_duplicated"] = 0
    t["products_unexpected"] = 0
    for key, count in sorted(rows.items()):
        if count > 1:
            t["products_duplicated"] += 1
            report.add("products_duplicated", _product_finding("duplicated_product", key, f"{count} rows"))
        if key in malformed:
            t["products_unexpected"] += 1
            report.add(
                "products_unexpected",
                _product_finding("unexpected_product", key, "malformed in the catalog, or never listed by its pages"),
            )
        elif key not in expected_good:
            t["products_unexpected"] += 1
            report.add("products_unexpected", _product_finding("unexpected_product", key, "not in any catalog"))


def _product_finding(kind: str, key: tuple[str, str, str], detail: str = "") -> Finding:
    company, source, external_id = key
    return Finding(kind=kind, company_id=company, source=source, external_id=external_id, detail=detail)


# --- images ---------------------------------------------------------------------------------


def _check_images(
    inputs: CheckInputs,
    report: CheckReport,
    completed: set[Source],
    touched: set[Source],
    include_images: dict[Source, bool],
    companies: set[str],
) -> None:
    rows_by_pair: dict[Pair, list[ImageRow]] = defaultdict(list)
    for row in inputs.images:
        if row.company_id in companies:
            rows_by_pair[(row.company_id, row.import_source, row.external_id, row.source_url)].append(row)
    objects = {k for k in inputs.s3_keys if _key_company(k) in companies}

    expect: dict[Pair, str] = {}  # pair -> "stored" | "rejected"
    keys_of: dict[Pair, tuple[str, str]] = {}
    for company, provider, store in touched:
        catalog = inputs.catalogs.get(store)
        if catalog is None:
            continue
        for product in catalog.products:
            if product.absent:
                continue  # a rejected (or never served) product is not imported, so neither are its images
            for image in product.images:
                pair: Pair = (company, f"{provider}:{store}", product.external_id, image.url)
                expect[pair] = image.expect
                keys_of[pair] = (
                    original_key(company, provider, store, product.external_id, image.url),
                    thumbnail_key(company, provider, store, product.external_id, image.url),
                )

    t = report.totals
    for name in (
        "images_expected",
        "images_missing",
        "images_duplicated",
        "images_unexpected",
        "thumbnails_missing",
        "thumbnails_duplicated",
        "images_rejected_as_expected",
    ):
        t[name] = 0
    accounted: set[str] = set()
    all_pairs = set(rows_by_pair) | set(expect)
    for pair in sorted(all_pairs):
        rows = rows_by_pair.get(pair, [])
        expected_original, expected_thumb = keys_of.get(pair, ("", ""))
        originals = {k for k in {expected_original, *(r.s3_key for r in rows if r.s3_key)} if k in objects}
        thumbs = {k for k in {expected_thumb, *(r.thumbnail_key for r in rows if r.thumbnail_key)} if k in objects}
        accounted |= originals | thumbs
        if len(rows) > 1 or len(originals) > 1:
            t["images_duplicated"] += 1
            report.add(
                "images_duplicated",
                _image_finding(pair, "duplicated_image", f"{len(rows)} row(s), {len(originals)} object(s)"),
            )
        if len(thumbs) > 1:
            t["thumbnails_duplicated"] += 1
            report.add("thumbnails_duplicated", _image_finding(pair, "duplicated_thumbnail", f"{len(thumbs)} objects"))

        company, source, _, _ = pair
        provider, _, store = source.partition(":")
        src: Source = (company, provider, store)
        wanted = expect.get(pair)
        if wanted is None or not include_images.get(src, True):
            t["images_unexpected"] += 1
            report.add("images_unexpected", _image_finding(pair, "unexpected_image", "not in any requested catalog"))
            continue
        if wanted == "rejected":
            if any(r.status == "STORED" for r in rows) or originals:
                t["images_unexpected"] += 1
                report.add(
                    "images_unexpected",
                    _image_finding(pair, "unexpected_image", "stored an image the catalog marks bad"),
                )
            elif any(r.status == "REJECTED" for r in rows):
                t["images_rejected_as_expected"] += 1
            continue
        if src not in completed:
            continue
        t["images_expected"] += 1
        stored = [r for r in rows if r.status == "STORED"]
        if not stored or not originals:
            t["images_missing"] += 1
            statuses = ",".join(sorted({r.status for r in rows})) or "no row"
            detail = f"row: {statuses}; original object {'present' if originals else 'absent'}"
            report.add("images_missing", _image_finding(pair, "missing_image", detail))
        if not thumbs or not any(r.thumbnail_key for r in stored):
            t["thumbnails_missing"] += 1
            detail = f"thumbnail object {'present' if thumbs else 'absent'}"
            report.add("thumbnails_missing", _image_finding(pair, "missing_thumbnail", detail))

    stray = sorted(objects - accounted)
    t["objects_unexpected"] = len(stray)
    for key in stray:
        report.add("objects_unexpected", Finding(kind="unexpected_object", company_id=_key_company(key), detail=key))


def _image_finding(pair: Pair, kind: str, detail: str) -> Finding:
    company, source, external_id, url = pair
    return Finding(kind=kind, company_id=company, source=source, external_id=external_id, url=url, detail=detail)


def _key_company(key: str) -> str:
    parts = key.split("/", 2)
    return parts[1] if len(parts) > 2 else ""


# --- bad records: rejected with their code, never failing the job ------------------------------

RECORD_TOTALS = (
    "records_bad_expected",
    "records_failed_jobs",
    "rejections_missing",
    "rejections_unexpected",
    "outcome_mismatch",
    "verification_missing",
)


def _check_records(
    inputs: CheckInputs, report: CheckReport, jobs_by_id: dict[str, JobRow], failing_stores: set[str]
) -> None:
    t = report.totals
    for name in RECORD_TOTALS:
        t[name] = 0
    messy_seen = False
    seen: set[str] = set()
    for ack in inputs.acknowledged:
        if ack.job_id in seen:
            continue
        seen.add(ack.job_id)
        catalog = inputs.catalogs.get(ack.store_id)
        row = jobs_by_id.get(ack.job_id)
        if catalog is None or row is None or ack.store_id in failing_stores or not catalog.messy:
            continue
        messy_seen = True
        coded, uncoded = catalog.expected_rejections()
        t["records_bad_expected"] += sum(coded.values()) + uncoded
        if row.status == "FAILED":
            t["records_failed_jobs"] += 1
            detail = f"failed although its bad records should only be rejected: {(row.error or '')[:200]}"
            report.add("records_failed_jobs", _job_finding("job_failed_for_a_record", ack, row.status, detail))
            continue
        if row.status != "COMPLETED":
            continue  # lost or cancelled: counted by the job checks
        wanted = catalog.expected_outcome()
        if row.outcome != wanted and (row.outcome is not None or catalog.coded):
            t["outcome_mismatch"] += 1
            detail = f"outcome {row.outcome or '(none)'}, expected {wanted}"
            report.add("outcome_mismatch", _job_finding("outcome_mismatch", ack, row.status, detail))
        wanted_issues = set(catalog.verification_issues)
        unreported = sorted(wanted_issues - set(row.verification_issues or ()))
        if unreported:
            t["verification_missing"] += len(unreported)
            reported = ", ".join(row.verification_issues or ()) or "none"
            detail = f"did not report {', '.join(unreported)} (reported: {reported})"
            report.add("verification_missing", _job_finding("verification_missing", ack, row.status, detail))
        missing, unexpected, detail = compare_rejections(coded, uncoded, row.rejection_counts)
        t["rejections_missing"] += missing
        t["rejections_unexpected"] += unexpected
        if missing or unexpected:
            report.add("rejections_mismatch", _job_finding("rejections_mismatch", ack, row.status, detail))
    if not messy_seen:
        for name in RECORD_TOTALS:
            t[name] = None  # no bad record in this run's catalogs: not measured, not "0 problems"


def compare_rejections(coded: Counter[str], uncoded: int, found: dict[str, int] | None) -> tuple[int, int, str]:
    """(missing, unexpected, detail): a job's rejection counts against the document's codes.

    A rejection the document gives no code for may carry any code; one the job reports beyond
    those is unexpected (a good record rejected, or a bad one under another code).
    """
    have: Counter[str] = Counter({str(k): int(v) for k, v in (found or {}).items() if int(v) > 0})
    missing_coded = sum(max(0, n - have[code]) for code, n in coded.items())
    extra = sum(max(0, n - coded[code]) for code, n in have.items())
    missing = missing_coded + max(0, uncoded - extra)
    unexpected = max(0, extra - uncoded)
    if found is None and (coded or uncoded):
        missing = sum(coded.values()) + uncoded
    wanted = ", ".join(f"{c}: {n}" for c, n in sorted(coded.items())) + (f", any code: {uncoded}" if uncoded else "")
    got = ", ".join(f"{c}: {n}" for c, n in sorted(have.items())) or (
        "no rejection counts" if found is None else "none"
    )
    return missing, unexpected, f"expected {wanted or 'none'}; the job counted {got}"


# --- totals ---------------------------------------------------------------------------------


def _totals(report: CheckReport) -> None:
    t = report.totals
    t["missing"] = t["products_missing"] + t["images_missing"] + t["thumbnails_missing"]
    t["duplicated"] = t["products_duplicated"] + t["images_duplicated"] + t["thumbnails_duplicated"]
    t["unexpected"] = t["unexpected_jobs"] + t["products_unexpected"] + t["images_unexpected"] + t["objects_unexpected"]
    t["success_rate"] = t["succeeded"] / t["expected_to_succeed"] if t["expected_to_succeed"] else None
