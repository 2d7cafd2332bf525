"""HTTP to providers, with every failure turned into a named transient or permanent error.

Quick retries of a single request live here (a 502 blip should not cost a whole job retry);
anything that outlasts them is raised to the job runner, which re-queues the job with backoff.
Each attempt, quick retries included, first passes the protection guard (circuit breaker, then
the shared rate limits) when the caller says whose budget it spends (``call``).
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from typing import Any

import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from importer.errors import (
    ImporterError,
    MalformedCatalog,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)
from importer.logs import get_logger
from importer.protection.breaker import Outcome
from importer.protection.guard import ProviderGuard
from importer.protection.ratelimit import CallContext

log = get_logger(__name__)


def parse_retry_after(value: str | None, *, default: float = 1.0) -> float:
    """Retry-After is either delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (ValueError, TypeError):
        return default
    return max(0.0, parsed.timestamp() - time.time())


class ProviderTransport:
    """One pooled httpx client per process, shared by all providers."""

    def __init__(
        self,
        *,
        timeout: float,
        max_inline_wait: float,
        quick_retries: int = 3,
        client: httpx.AsyncClient | None = None,
        guard: ProviderGuard | None = None,
    ) -> None:
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            follow_redirects=False,
        )
        self._max_inline_wait = max_inline_wait
        self._quick_retries = quick_retries
        self._guard = guard

    @property
    def client(self) -> httpx.AsyncClient:
        return self._client

    async def aclose(self) -> None:
        await self._client.aclose()

    async def get_json(
        self, url: str, *, params: dict[str, Any] | None = None, call: CallContext | None = None
    ) -> tuple[Any, httpx.Headers]:
        """GET and decode JSON; short 429 waits and 5xx blips are retried in place, a few times.

        ``JobDeferred`` from the guard is not retried here: it goes up to the job runner.
        """
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._quick_retries),
            wait=wait_exponential_jitter(multiplier=0.2, max=2.0, jitter=0.2),
            retry=retry_if_exception_type((ProviderUnavailable, _ShortRateLimit)),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._get_once(url, params, call)
        except _ShortRateLimit as exc:
            raise ProviderRateLimited(str(exc), retry_after=exc.retry_after) from exc
        raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover

    async def _get_once(
        self, url: str, params: dict[str, Any] | None, call: CallContext | None = None
    ) -> tuple[Any, httpx.Headers]:
        """One attempt; with a guard and a call context, only once the breaker and the limits allow."""
        if self._guard is None or call is None:
            return await self._attempt(url, params)
        permit = await self._guard.admit(call)
        try:
            result = await self._attempt(url, params)
        except ProviderUnavailable as exc:
            await self._guard.settle(permit, Outcome.FAILURE, str(exc))
            raise
        except (ImporterError, _ShortRateLimit):
            # 4xx, 429 or a malformed body: the provider is up and answering.
            await self._guard.settle(permit, Outcome.SUCCESS)
            raise
        except BaseException:
            await self._guard.settle(permit, Outcome.ABANDONED)
            raise
        await self._guard.settle(permit, Outcome.SUCCESS)
        return result

    async def _attempt(self, url: str, params: dict[str, Any] | None) -> tuple[Any, httpx.Headers]:
        try:
            response = await self._client.get(url, params=params)
        except httpx.TimeoutException as exc:
            raise ProviderUnavailable(f"timeout calling {url}: {exc!r}") from exc
        except httpx.TransportError as exc:
            raise ProviderUnavailable(f"connection error calling {url}: {exc!r}") from exc
        status = response.status_code
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            log.warning("provider_rate_limited", url=url, retry_after=retry_after)
            if retry_after <= self._max_inline_wait:
                await asyncio.sleep(retry_after)
                raise _ShortRateLimit(f"429 from {url}", retry_after=retry_after)
            raise ProviderRateLimited(f"429 from {url}", retry_after=retry_after)
        if status >= 500:
            raise ProviderUnavailable(f"{status} from {url}: {response.text[:200]}")
        if status >= 400:
            raise ProviderRejected(f"{status} from {url}: {response.text[:200]}")
        try:
            return response.json(), response.headers
        except ValueError as exc:
            raise MalformedCatalog(f"invalid JSON from {url}: {exc}") from exc


class _ShortRateLimit(Exception):
    """A 429 already waited out in place; retried by tenacity like a blip."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
