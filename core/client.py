"""The address of the client that sent a request.

`REMOTE_ADDR` is the peer of the server's socket: behind a reverse proxy, the proxy. A proxy
appends the address it received the request from to `X-Forwarded-For`, but anyone can send
that header with any value: it is believed only when `REMOTE_ADDR` is one of
`TRUSTED_PROXIES`, and then read from the right, past every trusted proxy, up to the first
address that is not one (the left part is whatever the client chose to send).
"""

from __future__ import annotations

import functools
import ipaddress

from django.conf import settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.cache
def _networks(spec: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in spec)


def _address(text: str):
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[::1]:443"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "10.0.0.1:443"
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address, networks: tuple[Network, ...]) -> bool:
    return address is not None and any(address in net for net in networks)


def client_address(request) -> str:
    """The client's address: `REMOTE_ADDR`, or, from a trusted proxy, the right-most address
    of `X-Forwarded-For` that is not a trusted proxy."""
    remote = request.META.get("REMOTE_ADDR", "") or ""
    networks = _networks(tuple(settings.TRUSTED_PROXIES))
    nearest = _address(remote)
    if not networks or not _trusted(nearest, networks):
        return remote
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    for hop in reversed([h for h in forwarded.split(",") if h.strip()]):
        address = _address(hop)
        if address is None:
            break  # garbage from the client side: the last address we trust stands
        nearest = address
        if not _trusted(address, networks):
            break
    return str(nearest)
