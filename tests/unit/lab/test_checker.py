"""The checker's arithmetic on crafted data: what went in must come out, exactly once."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from lab.checker import check, stores_expected_to_fail
from lab.checker_inputs import (
    DETAIL_LIMIT,
    CatalogFormatError,
    CheckInputs,
    CheckReport,
    ExpectedCatalog,
    ImageRow,
    JobRow,
    ProductRow,
    original_key,
    thumbnail_key,
)
from lab.rundir import AcknowledgedJob

COMPANY = "11111111-1111-4111-8111-111111111111"
OTHER = "22222222-2222-4222-8222-222222222222"
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def catalog(store: str, products: int, *, malformed: tuple[int, ...] = (), rejected: tuple[int, ...] = ()) -> dict:
    """The fake provider's /admin/stores/{id}/expected document."""
    return {
        "store_id": store,
        "dialect": "roastify",
        "products": [
            {
                "external_id": f"{store}-{i}",
                "title": f"Product {i}",
                "price_cents": 100,
                "images": [
                    {
                        "url": f"http://127.0.0.1:9/img/{store}/{i}.jpg",
                        "expect": "rejected" if i in rejected else "stored",
                    }
                ],
                "malformed": i in malformed,
            }
            for i in range(products)
        ],
        "counts": {"products": products},
    }


def ack(job_id: str, store: str, products: int, company: str = COMPANY) -> AcknowledgedJob:
    return AcknowledgedJob(
        job_id=job_id, company_id=company, provider="roastify", store_id=store, products=products, submitted_at=T0
    )


def imported(company: str, store: str, cat: ExpectedCatalog) -> tuple[list[ProductRow], list[ImageRow], set[str]]:
    """What a correct import of ``cat`` leaves in Postgres and S3."""
    source = f"roastify:{store}"
    products, images, keys = [], [], set()
    for p in cat.products:
        if p.malformed:
            continue
        products.append(ProductRow(company, p.external_id, source))
        for image in p.images:
            if image.expect == "rejected":
                images.append(ImageRow(company, source, p.external_id, image.url, "REJECTED"))
                continue
            key = original_key(company, "roastify", store, p.external_id, image.url)
            thumb = thumbnail_key(company, "roastify", store, p.external_id, image.url)
            images.append(ImageRow(company, source, p.external_id, image.url, "STORED", key, thumb))
            keys |= {key, thumb}
    return products, images, keys


def clean_run(stores: dict[str, int], **catalog_kwargs: tuple[int, ...]) -> CheckInputs:
    """Every store imported once, correctly, each by a COMPLETED job named after it."""
    acks, jobs, products, images, keys, catalogs = [], [], [], [], set(), {}
    for store, size in stores.items():
        cat = ExpectedCatalog.from_json(catalog(store, size, **catalog_kwargs))
        catalogs[store] = cat
        acks.append(ack(f"job-{store}", store, size))
        jobs.append(JobRow(f"job-{store}", COMPANY, "roastify", store, "COMPLETED"))
        p, i, k = imported(COMPANY, store, cat)
        products += p
        images += i
        keys |= k
    return CheckInputs(acks, jobs, catalogs, products, images, frozenset(keys))


def set_job(inputs: CheckInputs, job_id: str, **changes: object) -> None:
    inputs.jobs = [replace(j, **changes) if j.id == job_id else j for j in inputs.jobs]  # type: ignore[arg-type]


def problems(report: CheckReport) -> dict[str, int]:
    keys = ("lost", "failed", "missing", "duplicated", "unexpected", "expected_failure_missed")
    return {k: report.totals[k] for k in keys if report.totals[k]}


def test_a_clean_run_has_no_problem_and_full_success() -> None:
    report = check(clean_run({"a": 5, "b": 3}, rejected=(1,)))
    assert problems(report) == {}
    t = report.totals
    assert (t["acknowledged"], t["completed"], t["success_rate"]) == (2, 2, 1.0)
    assert (t["products_expected"], t["products_found"]) == (8, 8)
    assert t["images_expected"] == 6 and t["images_rejected_as_expected"] == 2


def test_an_acknowledged_job_still_running_after_the_drain_is_lost() -> None:
    inputs = clean_run({"a": 3, "b": 3})
    set_job(inputs, "job-b", status="IN_PROGRESS")
    report = check(inputs)
    assert report.totals["lost"] == 1
    assert report.findings["jobs_lost"][0].job_id == "job-b"
    assert report.findings["jobs_lost"][0].detail == "still IN_PROGRESS after the drain"
    assert report.totals["success_rate"] == 0.5
    # its products are not counted again as missing: the loss is reported once, at the job
    assert report.totals["products_missing"] == 0
    assert report.sources_unchecked == [
        {"company_id": COMPANY, "source": "roastify:b", "reason": "no job of this source completed"}
    ]


def test_an_acknowledged_job_without_a_row_is_lost() -> None:
    inputs = clean_run({"a": 2})
    inputs.jobs = []
    report = check(inputs)
    assert report.totals["lost"] == 1 and report.findings["jobs_lost"][0].detail == "no job row"


def test_a_duplicated_product_row_is_a_failure() -> None:
    inputs = clean_run({"a": 4})
    inputs.products.append(inputs.products[2])
    report = check(inputs)
    assert problems(report) == {"duplicated": 1}
    finding = report.findings["products_duplicated"][0]
    assert (finding.external_id, finding.detail) == ("a-2", "2 rows")


def test_a_duplicated_s3_object_for_one_image_is_a_failure() -> None:
    inputs = clean_run({"a": 3})
    row = inputs.images[0]
    other_key = f"images/{COMPANY}/roastify/a/some-other-digest"
    inputs.images[0] = replace(row, s3_key=other_key)  # the row points at a second object...
    inputs.s3_keys = inputs.s3_keys | {other_key}  # ...and the expected one is there as well
    report = check(inputs)
    assert problems(report) == {"duplicated": 1}
    assert report.totals["images_duplicated"] == 1
    assert report.findings["images_duplicated"][0].url == row.source_url
    assert report.findings["images_duplicated"][0].detail == "1 row(s), 2 object(s)"


def test_two_rows_for_one_image_are_a_duplicate() -> None:
    inputs = clean_run({"a": 2})
    inputs.images.append(inputs.images[0])
    assert check(inputs).totals["images_duplicated"] == 1


def test_a_missing_thumbnail_object_is_missing() -> None:
    inputs = clean_run({"a": 3})
    thumb = inputs.images[1].thumbnail_key
    inputs.s3_keys = inputs.s3_keys - {thumb}
    report = check(inputs)
    assert problems(report) == {"missing": 1}
    assert report.totals["thumbnails_missing"] == 1 and report.totals["images_missing"] == 0
    assert report.findings["thumbnails_missing"][0].external_id == "a-1"


def test_a_missing_product_and_a_missing_original_are_missing() -> None:
    inputs = clean_run({"a": 3})
    del inputs.products[0]
    inputs.s3_keys = inputs.s3_keys - {inputs.images[2].s3_key}
    report = check(inputs)
    assert report.totals["products_missing"] == 1 and report.totals["images_missing"] == 1
    assert report.totals["missing"] == 2


def test_a_job_row_nobody_acknowledged_is_unexpected() -> None:
    inputs = clean_run({"a": 1})
    inputs.jobs.append(JobRow("stray", COMPANY, "roastify", "a", "COMPLETED"))
    inputs.jobs.append(JobRow("other-tenant", OTHER, "roastify", "a", "COMPLETED"))  # not this run's company
    report = check(inputs)
    assert problems(report) == {"unexpected": 1}
    assert [f.job_id for f in report.findings["jobs_unexpected"]] == ["stray"]


def test_a_malformed_store_that_fails_with_a_reason_is_an_expected_failure() -> None:
    inputs = clean_run({"good": 3})
    bad = ExpectedCatalog.from_json(catalog("bad", 4, malformed=(2,)) | {"job_status": "FAILED"})
    inputs.catalogs["bad"] = bad
    inputs.acknowledged.append(ack("job-bad", "bad", 4))
    inputs.jobs.append(
        JobRow("job-bad", COMPANY, "roastify", "bad", "FAILED", error="page 1: product bad-2 has no title")
    )
    inputs.products += [ProductRow(COMPANY, "bad-0", "roastify:bad"), ProductRow(COMPANY, "bad-1", "roastify:bad")]
    failing = stores_expected_to_fail(inputs.catalogs.values())
    assert failing == {"bad"}

    report = check(inputs, expected_to_fail=failing)
    assert problems(report) == {}
    assert report.totals["expected_failures"] == 1
    assert report.totals["success_rate"] == 1.0  # the expected failure is not held against the importer
    assert report.expected_failure_job_ids() == {"job-bad"}


def test_the_same_failure_unexpected_is_a_failure_with_its_reason() -> None:
    inputs = clean_run({"a": 2, "b": 2})
    set_job(inputs, "job-b", status="FAILED", error="provider answered 500 five times")
    report = check(inputs)
    assert problems(report) == {"failed": 1}
    assert report.findings["jobs_failed"][0].detail == "provider answered 500 five times"
    assert report.failure_reasons == {"provider answered # five times": 1}


def test_a_malformed_store_that_completes_or_fails_silently_is_flagged() -> None:
    inputs = clean_run({"bad": 3}, malformed=(1,))
    report = check(inputs, expected_to_fail={"bad"})
    assert report.totals["expected_failure_missed"] == 1
    set_job(inputs, "job-bad", status="FAILED", error=None)
    assert check(inputs, expected_to_fail={"bad"}).totals["failed"] == 1


def test_a_malformed_product_in_the_database_is_unexpected() -> None:
    inputs = clean_run({"bad": 3}, malformed=(1,))
    set_job(inputs, "job-bad", status="FAILED", error="malformed")
    inputs.products.append(ProductRow(COMPANY, "bad-1", "roastify:bad"))
    report = check(inputs, expected_to_fail={"bad"})
    assert report.totals["products_unexpected"] == 1
    assert report.findings["products_unexpected"][0].detail.startswith("malformed in the catalog")


def test_an_image_marked_bad_but_stored_and_a_stray_object_are_unexpected() -> None:
    inputs = clean_run({"a": 2}, rejected=(0,))
    url = inputs.catalogs["a"].products[0].images[0].url
    key = original_key(COMPANY, "roastify", "a", "a-0", url)
    inputs.images = [replace(i, status="STORED", s3_key=key) if i.source_url == url else i for i in inputs.images]
    stray = f"thumbnails/{COMPANY}/roastify/a/leftover.jpg"
    inputs.s3_keys = inputs.s3_keys | {key, stray, "images/someone-else/x"}
    report = check(inputs)
    assert report.totals["images_unexpected"] == 1
    assert report.totals["objects_unexpected"] == 1
    assert report.findings["objects_unexpected"][0].detail == stray


def test_findings_are_capped_but_every_one_is_counted() -> None:
    inputs = clean_run({"big": DETAIL_LIMIT + 30})
    inputs.products = []
    report = check(inputs)
    assert report.totals["products_missing"] == DETAIL_LIMIT + 30
    assert len(report.findings["products_missing"]) == DETAIL_LIMIT
    assert report.truncated["products_missing"] == 30
    assert CheckReport.from_json(report.to_json()).totals == report.totals


def test_a_catalog_of_another_shape_is_refused() -> None:
    with pytest.raises(CatalogFormatError):
        ExpectedCatalog.from_json({"store_id": "a", "items": []})
    with pytest.raises(CatalogFormatError, match="stored\\|rejected"):
        ExpectedCatalog.from_json(
            {"store_id": "a", "products": [{"external_id": "1", "images": [{"url": "u", "expect": "maybe"}]}]}
        )


def test_s3_keys_follow_the_contract() -> None:
    # docs/contracts.md: images/<company>/<provider>/<store>/<sha256(external_id + "\n" + url)[:32]>
    import hashlib

    digest = hashlib.sha256(b"p-1\nhttp://x/1.jpg").hexdigest()[:32]
    assert original_key("c", "roastify", "s", "p-1", "http://x/1.jpg") == f"images/c/roastify/s/{digest}"
    assert thumbnail_key("c", "roastify", "s", "p-1", "http://x/1.jpg") == f"thumbnails/c/roastify/s/{digest}.jpg"


def test_a_store_without_its_catalog_is_reported_not_passed() -> None:
    inputs = clean_run({"a": 2, "b": 2})
    del inputs.catalogs["b"]
    report = check(inputs)
    assert report.totals["catalogs_missing"] == 1
    assert report.findings["catalogs_missing"][0].source == "roastify:b"
    assert report.totals["products_unexpected"] == 2  # b's rows are explained by no catalog
