"""Bad records in the checker: rejected under their code, never failing the job (messy-catalog).

Crafted runs, including the one today's main produces (one bad record fails the whole job):
it must be judged FAIL by criterion M1.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from lab.checker import check, compare_rejections, stores_expected_to_fail
from lab.checker_inputs import CatalogFormatError, CheckInputs, ExpectedCatalog, JobRow, ProductRow
from lab.criteria import Verdict, evaluate_criterion, load_criteria
from lab.metrics import Metrics
from tests.unit.lab.test_checker import COMPANY, ack, catalog, clean_run, imported, set_job


def messy_doc(store: str) -> dict[str, Any]:
    """Six products: #1 bad text, #2 bad price, #4 a bad image URL; the rest good."""
    doc = catalog(store, 6)
    doc["products"][1] |= {"expect": "rejected", "code": "text_invalid"}
    doc["products"][2] |= {"expect": "rejected", "code": "price_invalid"}
    doc["products"][4]["images"][0] |= {"expect": "rejected", "code": "image_url_invalid"}
    return doc


def messy_run(*, status: str = "COMPLETED", outcome: str | None = "WITH_REJECTIONS", counts: Any = None) -> CheckInputs:
    inputs = clean_run({"good": 2})
    cat = ExpectedCatalog.from_json(messy_doc("messy"))
    inputs.catalogs["messy"] = cat
    inputs.acknowledged.append(ack("job-messy", "messy", 6))
    if counts is None:
        counts = {"text_invalid": 1, "price_invalid": 1, "image_url_invalid": 1}
    inputs.jobs.append(
        JobRow("job-messy", COMPANY, "roastify", "messy", status, outcome=outcome, rejection_counts=counts)
    )
    if status == "COMPLETED":
        products, images, keys = imported(COMPANY, "messy", cat)
        inputs.products += products
        inputs.images += images
        inputs.s3_keys = inputs.s3_keys | keys
    return inputs


def m1() -> Any:
    (criterion,) = [c for c in load_criteria() if c.id == "M1"]
    return criterion


def judge(inputs: CheckInputs) -> tuple[dict[str, Any], Verdict]:
    report = check(inputs, expected_to_fail=stores_expected_to_fail(inputs.catalogs.values()))
    metrics = Metrics()
    metrics.add_checker(report)
    return report.totals, evaluate_criterion(m1(), metrics).verdict


def test_bad_records_rejected_with_their_codes_and_the_job_completed_pass() -> None:
    totals, verdict = judge(messy_run())
    assert verdict is Verdict.PASS
    assert totals["records_bad_expected"] == 3 and totals["failed"] == 0
    assert (totals["records_failed_jobs"], totals["rejections_missing"], totals["rejections_unexpected"]) == (0, 0, 0)
    assert totals["products_missing"] == 0 and totals["products_expected"] == 2 + 4  # the bad ones are not expected


def test_todays_main_one_bad_record_fails_the_job_and_the_run() -> None:
    inputs = messy_run(status="FAILED", outcome=None, counts={})
    set_job(inputs, "job-messy", error="internal error: ValueError: Invalid IPv6 URL")
    totals, verdict = judge(inputs)
    assert verdict is Verdict.FAIL
    assert totals["records_failed_jobs"] == 1 and totals["failed"] == 1 and totals["success_rate"] < 1
    report = check(inputs)
    assert "ValueError" in report.findings["records_failed_jobs"][0].detail


def test_a_bad_record_that_got_imported_fails() -> None:
    inputs = messy_run()
    inputs.products.append(ProductRow(COMPANY, "messy-2", "roastify:messy"))
    totals, verdict = judge(inputs)
    assert verdict is Verdict.FAIL and totals["products_unexpected"] == 1


@pytest.mark.parametrize(
    ("counts", "missing", "unexpected"),
    [
        ({"text_invalid": 1, "price_invalid": 1}, 1, 0),  # the image rejection went uncounted
        ({"text_invalid": 2, "price_invalid": 1, "image_url_invalid": 1}, 0, 1),  # a good record rejected
        ({"internal_error": 3}, 3, 3),  # every code wrong
    ],
)
def test_rejection_counts_must_match_the_codes(counts: dict[str, int], missing: int, unexpected: int) -> None:
    totals, verdict = judge(messy_run(counts=counts))
    assert verdict is Verdict.FAIL
    assert (totals["rejections_missing"], totals["rejections_unexpected"]) == (missing, unexpected)


@pytest.mark.parametrize("outcome", ["CLEAN", None, "UNVERIFIED"])
def test_a_completed_job_must_say_it_has_rejections(outcome: str | None) -> None:
    totals, verdict = judge(messy_run(outcome=outcome))
    assert verdict is Verdict.FAIL and totals["outcome_mismatch"] == 1


def test_a_store_declared_unverified_must_not_end_as_a_plain_completion() -> None:
    inputs = clean_run({"short": 3})
    inputs.catalogs["short"] = ExpectedCatalog.from_json(catalog("short", 3) | {"outcome": "UNVERIFIED"})
    set_job(inputs, "job-short", outcome="CLEAN", rejection_counts={})
    assert judge(inputs)[0]["outcome_mismatch"] == 1
    set_job(inputs, "job-short", outcome="UNVERIFIED")
    totals, verdict = judge(inputs)
    assert verdict is Verdict.PASS and totals["outcome_mismatch"] == 0


def test_a_run_without_bad_records_leaves_m1_not_measured() -> None:
    totals, verdict = judge(clean_run({"a": 2}, rejected=(0,)))
    assert totals["records_failed_jobs"] is None and verdict is Verdict.NOT_MEASURED


def test_the_expected_document_names_codes_outcomes_and_statuses() -> None:
    cat = ExpectedCatalog.from_json(messy_doc("m") | {"job_status": "FAILED"})
    assert [p.code for p in cat.products if p.bad] == ["text_invalid", "price_invalid"]
    assert cat.coded and cat.messy and cat.expected_outcome() == "WITH_REJECTIONS"
    assert cat.expected_rejections() == (Counter(text_invalid=1, price_invalid=1, image_url_invalid=1), 0)
    assert stores_expected_to_fail([cat]) == {"m"}
    old_shape = ExpectedCatalog.from_json(catalog("o", 3, malformed=(1,)))  # malformed, no code
    assert old_shape.messy and not old_shape.coded and old_shape.expected_rejections() == (Counter(), 1)
    assert stores_expected_to_fail([old_shape]) == set()  # one bad record never fails a job
    for broken in ({"expect": "maybe"}, {"code": 7}):
        doc = catalog("x", 2)
        doc["products"][0] |= broken
        with pytest.raises(CatalogFormatError):
            ExpectedCatalog.from_json(doc)
    with pytest.raises(CatalogFormatError):
        ExpectedCatalog.from_json(catalog("x", 1) | {"outcome": "FINE"})


def test_compare_rejections_allows_any_code_for_uncoded_bad_records() -> None:
    assert compare_rejections(Counter(a=1), 1, {"a": 1, "whatever": 1})[:2] == (0, 0)
    assert compare_rejections(Counter(a=1), 1, {"a": 1})[:2] == (1, 0)
    assert compare_rejections(Counter(a=1), 0, None)[:2] == (1, 0)  # an importer without rejection counts
    assert compare_rejections(Counter(), 0, {"a": 0})[:2] == (0, 0)


def test_pagination_faults_need_their_issues_reported_and_omitted_products_stay_absent() -> None:
    doc = catalog("short", 4) | {"counts": {"outcome": "UNVERIFIED", "verification_issues": ["short_page"]}}
    doc["products"][2] |= {"expect": "omitted", "images": []}
    inputs = clean_run({"a": 1})
    cat = ExpectedCatalog.from_json(doc)
    assert cat.messy and cat.products[2].absent and cat.expected_rejections() == (Counter(), 0)
    inputs.catalogs["short"] = cat
    inputs.acknowledged.append(ack("job-short", "short", 4))
    inputs.jobs.append(
        JobRow(
            "job-short",
            COMPANY,
            "roastify",
            "short",
            "COMPLETED",
            outcome="UNVERIFIED",
            rejection_counts={},
            verification_issues=("short_page", "total_mismatch"),  # more than asked is fine
        )
    )
    products, images, keys = imported(COMPANY, "short", cat)
    inputs.products += [p for p in products if p.external_id != "short-2"]
    inputs.images += [i for i in images if i.external_id != "short-2"]
    inputs.s3_keys = inputs.s3_keys | keys
    totals, verdict = judge(inputs)
    assert verdict is Verdict.PASS, totals
    set_job(inputs, "job-short", verification_issues=("total_mismatch",))
    totals, verdict = judge(inputs)
    assert verdict is Verdict.FAIL and totals["verification_missing"] == 1
    set_job(inputs, "job-short", verification_issues=("short_page",))
    inputs.products.append(ProductRow(COMPANY, "short-2", "roastify:short"))  # a product no page listed
    assert judge(inputs)[0]["products_unexpected"] == 1
