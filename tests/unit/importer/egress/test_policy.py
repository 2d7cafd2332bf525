"""The URL rules (scheme, port, validity) and the explicit host:port exceptions."""

from __future__ import annotations

import ipaddress

import pytest

from importer.egress.hostport import HostPort, parse_host_port
from importer.egress.policy import EgressPolicy
from importer.egress.refusal import Refusal
from importer.errors import EgressRefused
from importer.settings import Settings

POLICY = EgressPolicy()
PUBLIC = [ipaddress.ip_address("93.184.216.34")]
LOOPBACK = [ipaddress.ip_address("127.0.0.1")]


def refusal_of(call, *args) -> Refusal:  # type: ignore[no-untyped-def]
    with pytest.raises(EgressRefused) as caught:
        call(*args)
    return caught.value.refusal


@pytest.mark.parametrize(
    ("url", "refusal"),
    [
        ("http://[::1/x.jpg", Refusal.URL_INVALID),  # invalid IPv6 literal
        ("http://a.example:99999/x.jpg", Refusal.URL_INVALID),  # port out of range
        ("http://a.example:0/x.jpg", Refusal.URL_INVALID),
        ("http:///x.jpg", Refusal.URL_INVALID),  # no host
        ("file:///etc/passwd", Refusal.SCHEME_NOT_ALLOWED),
        ("ftp://a.example/x.jpg", Refusal.SCHEME_NOT_ALLOWED),
        ("gopher://a.example/x", Refusal.SCHEME_NOT_ALLOWED),
        ("http://a.example:8080/x.jpg", Refusal.PORT_NOT_ALLOWED),
        ("https://a.example:22/x.jpg", Refusal.PORT_NOT_ALLOWED),
        ("http://a.example:443/x.jpg", None),
        ("http://a.example/x.jpg", None),
        ("https://a.example/x.jpg", None),
        ("HTTPS://A.Example/x.jpg", None),
    ],
)
def test_url_rules(url: str, refusal: Refusal | None) -> None:
    if refusal is None:
        POLICY.check_url(url)
    else:
        assert refusal_of(POLICY.check_url, url) is refusal


def test_the_effective_port_is_the_schemes_default() -> None:
    assert POLICY.parse("http://a.example/x").port == 80
    assert POLICY.parse("https://a.example/x").port == 443
    assert POLICY.parse("http://[::1]:8080/x").host == "::1"
    assert POLICY.parse("http://A.EXAMPLE./x").host == "a.example"


def test_public_addresses_pass_and_others_are_refused() -> None:
    POLICY.check_destination("a.example", 443, PUBLIC)
    assert refusal_of(POLICY.check_destination, "a.example", 443, LOOPBACK) is Refusal.ADDRESS_NOT_PUBLIC
    mixed = [*PUBLIC, ipaddress.ip_address("10.0.0.1")]
    assert refusal_of(POLICY.check_destination, "a.example", 443, mixed) is Refusal.ADDRESS_NOT_PUBLIC
    assert refusal_of(POLICY.check_destination, "a.example", 8080, PUBLIC) is Refusal.PORT_NOT_ALLOWED


def test_an_explicit_exception_allows_exactly_its_host_and_port() -> None:
    policy = EgressPolicy.build(
        schemes=["http", "https"], ports=[80, 443], allowed_private=["127.0.0.1:18100"], resolve_timeout=1.0
    )
    policy.check_url("http://127.0.0.1:18100/roastify")
    policy.check_destination("127.0.0.1", 18100, LOOPBACK)
    # another port of the same host, another name for the same address: refused
    assert refusal_of(policy.check_url, "http://127.0.0.1:18101/x") is Refusal.PORT_NOT_ALLOWED
    assert refusal_of(policy.check_destination, "127.0.0.1", 80, LOOPBACK) is Refusal.ADDRESS_NOT_PUBLIC
    assert refusal_of(policy.check_destination, "localhost", 18100, LOOPBACK) is Refusal.PORT_NOT_ALLOWED


def test_settings_build_the_policy_and_refuse_malformed_exceptions() -> None:
    from importer.runtime import egress_policy

    settings = Settings(
        egress_allowed_private="127.0.0.1:18100, [::1]:18100, cdn.internal:8443",  # type: ignore[arg-type]
        egress_allowed_ports="80,443,8080",  # type: ignore[arg-type]
        egress_allowed_schemes="https",  # type: ignore[arg-type]
    )
    policy = egress_policy(settings)
    assert policy.allowed_private == {
        HostPort("127.0.0.1", 18100),
        HostPort("::1", 18100),
        HostPort("cdn.internal", 8443),
    }
    assert policy.ports == {80, 443, 8080} and policy.schemes == {"https"}
    assert refusal_of(policy.check_url, "http://a.example/x") is Refusal.SCHEME_NOT_ALLOWED
    with pytest.raises(ValueError, match="host:port"):
        Settings(egress_allowed_private="127.0.0.1")  # type: ignore[arg-type]


def test_production_defaults_allow_nothing_private() -> None:
    s = Settings()
    assert s.egress_allowed_private == []
    assert s.egress_allowed_ports == [80, 443] and s.egress_allowed_schemes == ["http", "https"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:80", HostPort("127.0.0.1", 80)),
        ("LocalHost:8080", HostPort("localhost", 8080)),
        ("[::1]:9", HostPort("::1", 9)),
        ("[0:0::1]:9", HostPort("::1", 9)),
    ],
)
def test_host_port_parsing(text: str, expected: HostPort) -> None:
    assert parse_host_port(text) == expected


@pytest.mark.parametrize("text", ["127.0.0.1", "::1:80", "[::1]", "host:0", "host:65536", ":80", "host:http"])
def test_host_port_parsing_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_host_port(text)
