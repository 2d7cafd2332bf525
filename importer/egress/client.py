"""httpx clients whose every connection goes through the checked network backend."""

from __future__ import annotations

import httpcore
import httpx

from importer.egress.backend import CheckedNetworkBackend, Resolver, system_resolver
from importer.egress.policy import EgressPolicy


class CheckedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport (request/response mapping, exception mapping) over our backend.

    httpx does not let a caller choose httpcore's network backend, so the connection pool
    httpx built is replaced by one with the same settings and ``CheckedNetworkBackend``. It
    relies on ``AsyncHTTPTransport._pool`` (httpx 0.27-0.28, pinned in pyproject.toml); writing
    a whole transport instead would copy httpx's request and exception mapping by hand.
    No proxy, ever (``trust_env`` off): a proxy would make the check judge the proxy's address.
    """

    def __init__(self, policy: EgressPolicy, *, limits: httpx.Limits, resolver: Resolver = system_resolver) -> None:
        super().__init__(limits=limits, trust_env=False)
        self.backend = CheckedNetworkBackend(policy, resolver=resolver)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=self.backend,
        )


def build_client(
    policy: EgressPolicy,
    *,
    timeout: float,
    limits: httpx.Limits,
    resolver: Resolver = system_resolver,
) -> httpx.AsyncClient:
    """A client that never follows redirects (a redirect is a new, unchecked URL) nor proxies."""
    return httpx.AsyncClient(
        transport=CheckedTransport(policy, limits=limits, resolver=resolver),
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        trust_env=False,
    )
