"""What a tenant is told about a job's error: a code and a generic message, never the internals.

The job row's ``error`` is written for operators (exception reprs, provider bodies, internal
URLs, retry counts) and stays that way: the logs and ``importer ops`` read it. Tenants see it
through this mapping, applied to every answer that shows a job (``GET /v1/imports/{id}``, the
event stream's snapshot and status events). Sanitising on output rather than storing a
second column keeps one writer of the row's error (the worker) and covers rows written before
this mapping existed.

The worker builds its reasons from a few fixed prefixes (importer/worker/jobs.py,
importer/reconcile.py); each maps to a code. Only two kinds of text pass through: the HTTP
status a provider refused with, and our own readable description of a malformed catalog
(``store …: product #30 on the page is malformed (id: Field required)``), which names the
tenant's own data and nothing of ours. Anything unrecognised is ``import_failed``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PROVIDER_STATUS = re.compile(r"^(?:[a-z ]+: )?(\d{3}) from ")
_MAX_PASSTHROUGH = 300


@dataclass(frozen=True)
class PublicError:
    code: str
    message: str


_BY_PREFIX: tuple[tuple[str, PublicError], ...] = (
    (
        "internal error",
        PublicError("internal_error", "the import stopped on an internal error; the operators have the details"),
    ),
    ("timeout", PublicError("job_timeout", "the import ran longer than its time limit")),
    (
        "gave up",
        PublicError(
            "retries_exhausted",
            "the import kept meeting temporary errors (provider or service unavailable) and gave up",
        ),
    ),
    (
        "retrying after",
        PublicError("retrying", "a temporary error interrupted the import; it is retried automatically"),
    ),
    (
        "deferred",
        PublicError("deferred", "the import waits for a rate limit or a provider to recover; it resumes automatically"),
    ),
    (
        "requeued",
        PublicError("requeued", "the import was re-queued after its worker was lost; it resumes automatically"),
    ),
    ("cancelled", PublicError("cancelled", "the import was cancelled")),
    ("invalid JSON from", PublicError("provider_bad_response", "the provider answered with a page that is not JSON")),
)

_UNKNOWN = PublicError("import_failed", "the import failed; the operators have the details")


def public_job_error(error: str | None) -> PublicError | None:
    """The tenant-facing form of a job row's ``error`` (None stays None)."""
    if not error:
        return None
    match = _PROVIDER_STATUS.match(error)
    if match:
        status = match.group(1)
        if status.startswith("4") and status != "429":
            return PublicError("provider_rejected", f"the provider refused the request (HTTP {status})")
        return PublicError("provider_unavailable", f"the provider was unavailable (HTTP {status})")
    for prefix, public in _BY_PREFIX:
        if error.startswith(prefix):
            return public
    if error.startswith("store ") and "://" not in error and len(error) <= _MAX_PASSTHROUGH:
        return PublicError("malformed_catalog", error)
    return _UNKNOWN
