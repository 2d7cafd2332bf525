"""``host:port`` pairs: the explicit exceptions of the egress policy, as settings write them.

An exception names a destination exactly as URLs name it (host name or IP literal, and a port),
so ``127.0.0.1:8080`` allows ``http://127.0.0.1:8080/...`` and nothing else: not
``http://localhost:8080/...`` (another name that happens to resolve there), not port 8081.
Matching by the name written in the URL, not by the resolved address, is what keeps an
attacker-controlled DNS name from borrowing an exception meant for a local service.
"""

from __future__ import annotations

from dataclasses import dataclass

from importer.egress.addresses import parse_address


@dataclass(frozen=True, order=True)
class HostPort:
    host: str  # lower case; IP literals in their compressed form, without brackets
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def normalize_host(host: str) -> str:
    """One spelling per host: lower case, IPv6 without brackets and compressed (``0:0::1`` is ``::1``)."""
    address = parse_address(host)
    if address is not None:
        return str(address)
    return host.strip().strip(".").lower()


def parse_host_port(text: str) -> HostPort:
    """``host:port`` or ``[v6]:port``; raises ValueError with the offending text."""
    value = text.strip()
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ValueError(f"{text!r} is not [ipv6]:port")
        port_text = rest[1:]
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep or ":" in host:
            raise ValueError(f"{text!r} is not host:port (write IPv6 as [addr]:port)")
    if not host:
        raise ValueError(f"{text!r} has no host")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{text!r}: the port must be 1..65535")
    return HostPort(normalize_host(host), int(port_text))
