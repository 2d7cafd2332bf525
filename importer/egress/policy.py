"""The egress rules: which URLs a worker may request and which addresses it may connect to.

Two checks, at two moments, because each needs what only that moment knows:

* ``parse``/``check_scheme``/``check_port`` before a request: the URL as written (an invalid URL,
  a scheme, a port). The image pipeline adds its host allow-list in between.
* ``check_destination`` at connect time, in the network backend: the addresses the host name
  resolved to, right before connecting to one of them (see ``importer.egress.backend``).

A destination named in ``allowed_private`` (``host:port``, matched against the URL's host as
written) skips the port and address rules: that is how the local stack lets workers reach its
own fake provider and CDN on loopback, and nothing else there.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import httpx

from importer.egress.addresses import AddressClass, IPAddress, classify
from importer.egress.hostport import HostPort, normalize_host, parse_host_port
from importer.egress.refusal import Refusal
from importer.errors import EgressRefused

DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Target:
    """A URL's destination as the HTTP client will see it."""

    scheme: str
    host: str  # normalized (lower case, IDNA-encoded, IPv6 without brackets)
    port: int  # the effective port: explicit, else the scheme's default


@dataclass(frozen=True)
class EgressPolicy:
    schemes: frozenset[str] = frozenset({"http", "https"})
    ports: frozenset[int] = frozenset({80, 443})
    allowed_private: frozenset[HostPort] = field(default_factory=frozenset)
    resolve_timeout: float = 5.0

    @classmethod
    def build(
        cls,
        *,
        schemes: Iterable[str],
        ports: Iterable[int],
        allowed_private: Iterable[str],
        resolve_timeout: float,
    ) -> EgressPolicy:
        """From settings' lists; a malformed ``host:port`` raises ValueError (refuse to start)."""
        return cls(
            schemes=frozenset(s.strip().lower() for s in schemes),
            ports=frozenset(int(p) for p in ports),
            allowed_private=frozenset(parse_host_port(x) for x in allowed_private),
            resolve_timeout=resolve_timeout,
        )

    # --- before the request: the URL as written ----------------------------------------------

    def parse(self, url: str) -> Target:
        """Parse with httpx, the parser that will send the request (no parser differential)."""
        try:
            parsed = httpx.URL(url)
            raw_host = parsed.raw_host.decode("ascii")
            port = parsed.port
        except (httpx.InvalidURL, ValueError, UnicodeError, TypeError) as exc:
            raise EgressRefused(f"invalid URL: {exc}", refusal=Refusal.URL_INVALID) from exc
        scheme = parsed.scheme.lower()
        if not raw_host and scheme in DEFAULT_PORTS:  # file:///x has no host either: its scheme is the problem
            raise EgressRefused("invalid URL: no host", refusal=Refusal.URL_INVALID)
        if port is not None and not 0 < port < 65536:
            raise EgressRefused(f"invalid URL: port {port} is out of range", refusal=Refusal.URL_INVALID)
        effective = port if port is not None else DEFAULT_PORTS.get(scheme, 0)
        return Target(scheme=scheme, host=normalize_host(raw_host), port=effective)

    def check_scheme(self, target: Target) -> None:
        if target.scheme not in self.schemes:
            raise EgressRefused(
                f"URL scheme {target.scheme!r} is not allowed (allowed: {', '.join(sorted(self.schemes))})",
                refusal=Refusal.SCHEME_NOT_ALLOWED,
            )

    def check_port(self, host: str, port: int) -> None:
        if port in self.ports or self.explicitly_allowed(host, port):
            return
        raise EgressRefused(
            f"port {port} of host {host!r} is not allowed (allowed: {', '.join(map(str, sorted(self.ports)))})",
            refusal=Refusal.PORT_NOT_ALLOWED,
        )

    def check_url(self, url: str) -> Target:
        """Scheme and port of a URL whose host needs no allow-list (a provider base URL)."""
        target = self.parse(url)
        self.check_scheme(target)
        self.check_port(target.host, target.port)
        return target

    # --- at connect time: the resolved addresses ----------------------------------------------

    def explicitly_allowed(self, host: str, port: int) -> bool:
        return HostPort(normalize_host(host), port) in self.allowed_private

    def check_destination(self, host: str, port: int, addresses: list[IPAddress]) -> None:
        """Every address ``host`` resolved to must be public, unless ``host:port`` is an exception.

        Every address, not just one: a name that resolves to a public and a private address is
        refused rather than trusted to be connected to the right one.
        """
        self.check_port(host, port)
        if self.explicitly_allowed(host, port):
            return
        for address in addresses:
            kind = classify(address)
            if kind is not AddressClass.PUBLIC:
                raise EgressRefused(
                    f"host {host!r} resolves to {address}, which is not a public address ({kind})",
                    refusal=Refusal.ADDRESS_NOT_PUBLIC,
                )
