"""HTTP to providers, with every failure turned into a named transient or permanent error.

Quick retries of a single request live here (a 502 blip should not cost a whole job retry);
anything that outlasts them is raised to the job runner, which re-queues the job with backoff.
Each attempt, quick retries included, first passes the protection guard (circuit breaker, then
the shared rate limits) when the caller says whose budget it spends (``call``).

Pages are read like any hostile input: the URL passes the egress policy (and the client connects
only to checked addresses), the body is read under a cap counted after decompression, and each
attempt runs under a total deadline, because httpx's timeouts are per read and a provider that
trickles a byte at a time would otherwise hold the job until the job timeout.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from typing import Any

import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from importer.egress.body import read_capped
from importer.egress.client import build_client
from importer.egress.policy import EgressPolicy
from importer.errors import (
    EgressRefused,
    ImporterError,
    MalformedCatalog,
    ProviderPageTooLarge,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
    ResponseTooLarge,
)
from importer.logs import get_logger
from importer.protection.breaker import Outcome
from importer.protection.guard import ProviderGuard
from importer.protection.ratelimit import CallContext
from importer.providers.fields import json_int

log = get_logger(__name__)

DEFAULT_PAGE_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_REQUEST_DEADLINE = 60.0
ERROR_BODY_QUOTE_BYTES = 1024  # enough to quote 200 characters of an error body in a reason


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
    """One pooled httpx client per process, shared by all providers.

    Without ``policy`` the strict default applies (public addresses on ports 80/443 only); a
    ``client`` passed in (tests) keeps its own transport, but URLs still pass the policy.
    """

    def __init__(
        self,
        *,
        timeout: float,
        max_inline_wait: float,
        quick_retries: int = 3,
        client: httpx.AsyncClient | None = None,
        guard: ProviderGuard | None = None,
        policy: EgressPolicy | None = None,
        page_max_bytes: int = DEFAULT_PAGE_MAX_BYTES,
        deadline: float = DEFAULT_REQUEST_DEADLINE,
    ) -> None:
        self._policy = policy or EgressPolicy()
        self._client = client or build_client(
            self._policy,
            timeout=timeout,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )
        self._max_inline_wait = max_inline_wait
        self._quick_retries = quick_retries
        self._guard = guard
        self._page_max_bytes = page_max_bytes
        self._deadline = deadline

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
        self._policy.check_url(url)  # a refused base URL never spends rate-limit budget
        if self._guard is None or call is None:
            return await self._attempt(url, params)
        permit = await self._guard.admit(call)
        try:
            result = await self._attempt(url, params)
        except ProviderUnavailable as exc:
            await self._guard.settle(permit, Outcome.FAILURE, str(exc))
            raise
        except EgressRefused:
            # refused at connect time (the address): says nothing about the provider's health
            await self._guard.settle(permit, Outcome.ABANDONED)
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
        status, headers, body = await self._fetch(url, params)
        if status == 429:
            retry_after = parse_retry_after(headers.get("Retry-After"))
            log.warning("provider_rate_limited", url=url, retry_after=retry_after)
            if retry_after <= self._max_inline_wait:
                await asyncio.sleep(retry_after)
                raise _ShortRateLimit(f"429 from {url}", retry_after=retry_after)
            raise ProviderRateLimited(f"429 from {url}", retry_after=retry_after)
        quoted = body[:ERROR_BODY_QUOTE_BYTES].decode("utf-8", "replace")[:200]
        if status >= 500:
            raise ProviderUnavailable(f"{status} from {url}: {quoted}")
        if status >= 400:
            raise ProviderRejected(f"{status} from {url}: {quoted}")
        try:
            return json.loads(body, parse_int=json_int), headers  # huge ints: the record's problem
        except (ValueError, RecursionError) as exc:
            raise MalformedCatalog(f"invalid JSON from {url}: {exc}") from exc

    async def _fetch(self, url: str, params: dict[str, Any] | None) -> tuple[int, httpx.Headers, bytes]:
        """One GET under the total deadline; a page body under the cap, an error body truncated."""
        try:
            async with asyncio.timeout(self._deadline):
                async with self._client.stream("GET", url, params=params) as response:
                    if response.status_code >= 400:
                        body = await read_capped(response, ERROR_BODY_QUOTE_BYTES, truncate=True)
                    else:
                        body = await read_capped(response, self._page_max_bytes)
                    return response.status_code, response.headers, body
        except TimeoutError as exc:  # our deadline (httpx's own timeouts are httpx.TimeoutException)
            raise ProviderUnavailable(
                f"no complete answer from {url} within the {self._deadline:g}s request deadline"
            ) from exc
        except ResponseTooLarge as exc:
            raise ProviderPageTooLarge(
                f"page from {url} is larger than {exc.limit} bytes (decoded): not a catalog page"
            ) from exc
        except httpx.DecodingError as exc:
            raise MalformedCatalog(f"undecodable body from {url}: {exc}") from exc
        except httpx.TimeoutException as exc:
            raise ProviderUnavailable(f"timeout calling {url}: {exc!r}") from exc
        except httpx.TransportError as exc:
            raise ProviderUnavailable(f"connection error calling {url}: {exc!r}") from exc


class _ShortRateLimit(Exception):
    """A 429 already waited out in place; retried by tenacity like a blip."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
