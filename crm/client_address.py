"""The address of the client a request comes from, the same for every feature that records or
counts it: signup and API throttling, sign-in lockouts (django-axes), consent evidence, and the
unsubscribe, preference and tracking links.

Behind a reverse proxy every request arrives from the proxy, and the client's address is only in
the X-Forwarded-For header that the proxy appends to. A client can send that header too, with any
address it likes, so it is read only when the connection comes from a proxy listed in
TRUSTED_PROXIES, and only as far back as the hops are trusted proxies themselves: the header is
walked from its right end (the hop added by the nearest proxy) and the first address that is not
a trusted proxy is the client. With TRUSTED_PROXIES empty the header is ignored and the client is
the address of the connection (REMOTE_ADDR).

django-ipware was considered: its trusted-proxy check looks at the entries of the header only,
never at the peer that sent it, and without configuration it believes the header; either lets a
client that reaches the app directly pick its own address.
"""

import functools
import ipaddress

from django.conf import settings
from django.http import HttpRequest

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_proxies_parse(entries: list[str] | tuple[str, ...]) -> tuple[Network, ...]:
    """TRUSTED_PROXIES as networks (an address alone is a /32 or /128); ValueError names a bad
    entry."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"TRUSTED_PROXIES: {entry!r} is not an IP address or network"
            ) from None
    return tuple(networks)


@functools.lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return trusted_proxies_parse(entries)


def _address(value: str) -> Address | None:
    """One hop of the header or REMOTE_ADDR; a port (1.2.3.4:80, [::1]:80) is dropped."""
    value = value.strip()
    if value.startswith("[") and "]" in value:
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_address(request: HttpRequest) -> str | None:
    """The client's IP address as text; None when the connection has none (a test client)."""
    peer = _address(request.META.get("REMOTE_ADDR") or "")
    if peer is None:
        return None
    networks = _networks(tuple(settings.TRUSTED_PROXIES))

    def trusted(address: Address) -> bool:
        return any(address in network for network in networks)

    if not trusted(peer):
        return str(peer)
    client = peer
    header = request.META.get("HTTP_X_FORWARDED_FOR", "")
    for hop in reversed([h for h in header.split(",") if h.strip()]):
        address = _address(hop)
        if address is None:  # garbage: nothing left of it in the header can be believed
            break
        client = address
        if not trusted(address):
            break
    return str(client)
