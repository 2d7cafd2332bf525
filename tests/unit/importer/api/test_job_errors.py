"""Tenants see a job's error as a code and a generic message; the row's text stays internal."""

from __future__ import annotations

import pytest

from importer.api.job_errors import public_job_error


@pytest.mark.parametrize(
    ("stored", "code", "must_not_show"),
    [
        ("internal error: ValueError: bad literal <Record id=1>", "internal_error", "ValueError"),
        ("internal error: OverflowError: int too large", "internal_error", "OverflowError"),
        ("timeout: job exceeded job_timeout", "job_timeout", "job_timeout"),
        (
            "gave up after 10 tries; last error: 503 from http://10.0.0.7:8080/stores/s/products: <html>oops",
            "retries_exhausted",
            "10.0.0.7",
        ),
        ("retrying after: connection error calling http://10.0.0.7/x: OSError()", "retrying", "10.0.0.7"),
        ("deferred: roastify circuit breaker is open", "deferred", "breaker"),
        (
            '404 from http://127.0.0.1:9999/stores/st_x/products?page=1: {"error": "no store"}',
            "provider_rejected",
            "127.0.0.1",
        ),
        ("invalid JSON from http://internal.example/x: Expecting value", "provider_bad_response", "internal.example"),
        ("requeued by the reconciler", "requeued", "reconciler"),
        ("something nobody planned for: http://10.9.9.9/", "import_failed", "10.9.9.9"),
        ("store st_1: page fetched from http://10.0.0.1/ broke", "import_failed", "10.0.0.1"),
    ],
)
def test_internal_text_maps_to_a_code(stored: str, code: str, must_not_show: str) -> None:
    public = public_job_error(stored)
    assert public is not None and public.code == code
    assert must_not_show not in public.message


def test_provider_status_is_kept() -> None:
    public = public_job_error("404 from http://127.0.0.1:1/stores/x: nope")
    assert public is not None and "404" in public.message


def test_a_readable_catalog_reason_passes_through() -> None:
    reason = "store st_1: product #30 on the page is malformed (id: Field required)"
    public = public_job_error(reason)
    assert public is not None and public.code == "malformed_catalog" and public.message == reason


def test_no_error_is_no_error() -> None:
    assert public_job_error(None) is None and public_job_error("") is None
