"""Which IP addresses a worker may connect to without an explicit exception: public ones only.

Python's ``ipaddress`` ``is_global`` is the base (IANA's special-purpose registries), with
explicit checks in front of it because ``is_global`` alone lets some through or says too little:

* multicast (224.0.0.0/4, ff00::/8) is ``is_global`` for the global scopes: refused, a unicast
  HTTP connection to a group address is never what a catalog means;
* IPv6 forms that embed an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, IPv4-compatible
  ``::a.b.c.d``, 6to4 ``2002::/16``, Teredo ``2001::/32``, NAT64 ``64:ff9b::/96``) are judged by
  the embedded IPv4 address, so ``::ffff:127.0.0.1`` is loopback, not "reserved";
* 100.64.0.0/10 (carrier-grade NAT, shared address space) is named SHARED for a clearer reason.

Documentation and benchmarking ranges (192.0.2.0/24, 198.18.0.0/15, 2001:db8::/32, ...) are not
global and are refused as NOT_GLOBAL.
"""

from __future__ import annotations

import enum
import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_SHARED = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class AddressClass(enum.StrEnum):
    PUBLIC = "public"
    UNSPECIFIED = "unspecified"
    LOOPBACK = "loopback"
    PRIVATE = "private"
    LINK_LOCAL = "link-local"
    SHARED = "shared (carrier-grade NAT)"
    MULTICAST = "multicast"
    RESERVED = "reserved"
    NOT_GLOBAL = "not globally routable"


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, when it is one of the embedding forms."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # (server, client): the client is where traffic goes
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    # IPv4-compatible (::a.b.c.d, deprecated); :: and ::1 themselves are judged as IPv6 below
    if int(address) >> 32 == 0 and int(address) > 1:
        return ipaddress.IPv4Address(int(address))
    return None


def classify(address: IPAddress) -> AddressClass:
    """The most specific class of ``address``; only PUBLIC may be connected to by default."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            return classify(inner)
    if address.is_unspecified:
        return AddressClass.UNSPECIFIED
    if address.is_loopback:
        return AddressClass.LOOPBACK
    if address.is_link_local:
        return AddressClass.LINK_LOCAL
    if address.is_multicast:
        return AddressClass.MULTICAST
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED:
        return AddressClass.SHARED
    if address.is_private or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local):
        return AddressClass.PRIVATE
    if address.is_reserved:
        return AddressClass.RESERVED
    if not address.is_global:
        return AddressClass.NOT_GLOBAL
    return AddressClass.PUBLIC


def parse_address(text: str) -> IPAddress | None:
    """An IP literal (brackets and a zone id allowed), or None for a host name."""
    value = text.strip()
    if value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None
