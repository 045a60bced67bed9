"""Which addresses an outbound webhook may reach. Pure.

A webhook URL comes from configuration, but what its host resolves to can change; a target
that resolves to a loopback, private, link-local (cloud metadata at 169.254.169.254), shared,
reserved or multicast address would let a webhook reach inside the network Baton runs in.
Such targets are refused unless the endpoint sets `allow_private` (the local stack).
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return is_public(mapped)
    return address.is_global and not address.is_multicast


def refused_reason(addresses: list[str]) -> str | None:
    """Why a target resolving to `addresses` is refused, or None when every one is public.
    Names the kind of address, never the address (it says nothing a log reader needs)."""
    if not addresses:
        return "target does not resolve"
    for raw in addresses:
        address = ipaddress.ip_address(raw.split("%", 1)[0])
        if not is_public(address):
            kind = (
                "loopback"
                if address.is_loopback
                else "link-local"
                if address.is_link_local
                else "private"
                if address.is_private
                else "non-public"
            )
            return f"target refused: resolves to a {kind} address (allow_private is off)"
    return None
