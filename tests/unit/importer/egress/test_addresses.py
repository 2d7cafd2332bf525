"""Which addresses count as public: a table, IPv6 forms that embed IPv4 included."""

from __future__ import annotations

import ipaddress

import pytest

from importer.egress.addresses import AddressClass, classify, parse_address

C = AddressClass


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        # public
        ("93.184.216.34", C.PUBLIC),
        ("8.8.8.8", C.PUBLIC),
        ("2606:2800:220:1:248:1893:25c8:1946", C.PUBLIC),
        # unspecified
        ("0.0.0.0", C.UNSPECIFIED),
        ("::", C.UNSPECIFIED),
        # loopback, in every spelling
        ("127.0.0.1", C.LOOPBACK),
        ("127.255.255.254", C.LOOPBACK),
        ("::1", C.LOOPBACK),
        ("::ffff:127.0.0.1", C.LOOPBACK),  # IPv4-mapped
        ("64:ff9b::7f00:1", C.LOOPBACK),  # NAT64 of 127.0.0.1
        ("2002:7f00:1::", C.LOOPBACK),  # 6to4 of 127.0.0.1
        # private
        ("10.1.2.3", C.PRIVATE),
        ("172.16.0.1", C.PRIVATE),
        ("192.168.1.1", C.PRIVATE),
        ("::ffff:10.0.0.1", C.PRIVATE),
        ("::ffff:192.168.0.1", C.PRIVATE),
        ("fc00::1", C.PRIVATE),  # unique local, fc00::/7
        ("fd12:3456::1", C.PRIVATE),
        ("fec0::1", C.PRIVATE),  # deprecated site-local
        ("0.1.2.3", C.PRIVATE),  # "this network"
        # link-local (cloud metadata lives here)
        ("169.254.169.254", C.LINK_LOCAL),
        ("::ffff:169.254.169.254", C.LINK_LOCAL),
        ("fe80::1", C.LINK_LOCAL),
        ("fe80::1%1", C.LINK_LOCAL),
        # shared address space (carrier-grade NAT)
        ("100.64.0.1", C.SHARED),
        ("100.127.255.254", C.SHARED),
        ("::ffff:100.64.0.1", C.SHARED),
        # multicast (is_global says yes for these)
        ("224.0.0.1", C.MULTICAST),
        ("239.255.255.250", C.MULTICAST),
        ("ff0e::1", C.MULTICAST),
        # reserved and other special-purpose ranges
        ("240.0.0.1", C.PRIVATE),  # Python counts 240/4 among is_private
        ("255.255.255.255", C.PRIVATE),
        ("192.0.2.10", C.PRIVATE),  # documentation
        ("2001:db8::1", C.PRIVATE),  # documentation
        ("192.0.0.9", C.PUBLIC),  # 192.0.0.9/32 is globally reachable per IANA
    ],
)
def test_classification_table(address: str, expected: AddressClass) -> None:
    parsed = parse_address(address)
    assert parsed is not None
    assert classify(parsed) is expected


def test_only_public_is_public_for_every_special_network() -> None:
    """Any address in a non-global IANA range is refused, whatever class names it."""
    for network in ("10.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "100.64.0.0/10", "fc00::/7", "fe80::/10"):
        net = ipaddress.ip_network(network)
        for address in (net[0], net[1], net[-1]):
            assert classify(address) is not C.PUBLIC, address


def test_parse_address_accepts_literals_only() -> None:
    assert parse_address("[::1]") == ipaddress.IPv6Address("::1")
    assert parse_address(" 127.0.0.1 ") == ipaddress.IPv4Address("127.0.0.1")
    assert parse_address("localhost") is None
    assert parse_address("images.example.com") is None
