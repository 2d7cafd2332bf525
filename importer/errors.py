"""The importer's named errors.

The split that matters is transient vs permanent: a transient error means "the same job will
succeed later" (the worker re-queues it with backoff), a permanent one means "retrying cannot
help" (the job is FAILED with a readable reason). Everything the pipeline raises on purpose is
one of these, so the job runner never has to guess from a foreign exception type.
"""

from __future__ import annotations

from importer.egress.refusal import Refusal
from importer.models import RejectionCode


class ImporterError(Exception):
    """Base of every error the importer raises on purpose."""


class TransientError(ImporterError):
    """The job should be retried later; ``retry_after`` is a hint in seconds, if known."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ProviderUnavailable(TransientError):
    """Connection error, timeout or 5xx from a provider."""


class ProviderRateLimited(TransientError):
    """The provider answered 429; ``retry_after`` comes from its Retry-After header."""


class DependencyUnavailable(TransientError):
    """PostgreSQL, Redis or S3 did not answer; the job is handed back and retried."""


class PermanentError(ImporterError):
    """Retrying the same job cannot help; the job is marked FAILED with this message."""


class ProviderRejected(PermanentError):
    """The provider refused the request (4xx other than 429): unknown store, bad credentials."""


class MalformedCatalog(PermanentError):
    """A catalog page or product does not have the shape the provider's dialect promises."""


class ImageRejected(ImporterError):
    """One image cannot be stored (not an image, too large, decompression bomb, disallowed host).

    Recorded on the image row with its ``code`` (a ``RejectionCode``); it never fails the job.
    """

    def __init__(self, message: str, *, code: RejectionCode = RejectionCode.IMAGE_REJECTED) -> None:
        super().__init__(message)
        self.code = code


class LeaseLost(ImporterError):
    """Another run owns the job now (our fencing token was replaced); stop without writing."""


class ShutdownRequested(ImporterError):
    """The worker is shutting down; the job stopped at a checkpoint and goes back to the queue."""


class JobDeferred(ImporterError):
    """Our own protection said "not now" (rate limit, open breaker): run the job later.

    Not a ``TransientError`` on purpose: nothing went wrong with the job, so the deferral
    must not spend one of its tries (the job runner refunds arq's try and re-queues it
    ``retry_after`` seconds later, plus jitter).
    """

    def __init__(self, retry_after: float, reason: str) -> None:
        super().__init__(f"deferred for {retry_after:.1f}s: {reason}")
        self.retry_after = max(0.0, retry_after)
        self.reason = reason


class OpsError(ImporterError):
    """An operator command cannot do what was asked (bad argument, service unreachable)."""


class ApiError(ImporterError):
    """An error the API turns into a 4xx/5xx response with a clear message.

    ``code`` is the machine-readable reason clients branch on (``idempotency_key_reused``,
    ``auth_rate_limited`` …); without one, the API derives a generic code from the status.
    """

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.headers = headers or {}
        self.code = code


# --- egress safety (images and provider pages) -----------------------------------------------


class EgressRefused(PermanentError):
    """The egress policy refused a destination before anything was sent (scheme, host, port,
    a non-public address); ``refusal`` says which rule. Retrying cannot help: the URL or the
    configuration has to change.
    """

    def __init__(self, message: str, *, refusal: Refusal) -> None:
        super().__init__(message)
        self.refusal = refusal


class ResponseTooLarge(ImporterError):
    """A response body passed its cap, counted after decompression; reading stopped there.

    Callers turn it into what it means for them: a rejected image, a page that is no page.
    """

    def __init__(self, message: str, *, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class ProviderPageTooLarge(PermanentError):
    """A provider answered a catalog page larger than any real page (or a compression bomb)."""
