"""Give every request an id (for the audit trail and logs) and the client address.

The id is always made here: a client's X-Request-ID is kept apart (``client_request_id``, when
it is 8-64 safe characters) for correlating with its own logs, never trusted as the id."""

from __future__ import annotations

import functools
import ipaddress
import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def new_request_id() -> str:
    """The server's own id of a request (page or websocket)."""
    return uuid.uuid4().hex


def client_request_id(value: str | None) -> str:
    """What a client sent as X-Request-ID, kept for correlation only when it is safe, else ''."""
    value = value or ""
    return value if _VALID_ID.fullmatch(value) else ""


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.request_id = new_request_id()  # type: ignore[attr-defined]
        request.client_request_id = client_request_id(request.headers.get("X-Request-ID"))  # type: ignore[attr-defined]
        request.client_ip = request_client_ip(request)  # type: ignore[attr-defined]
        response = self.get_response(request)
        response["X-Request-ID"] = request.request_id  # type: ignore[attr-defined]
        return response


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(value: str | None) -> IPAddress | None:
    """An IP address from a peer or X-Forwarded-For entry (``a.b.c.d:port``, ``[v6]:port`` too)."""
    value = (value or "").strip()
    if value.startswith("[") and "]" in value:
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


@functools.lru_cache(maxsize=8)
def _trusted_networks(entries: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(e, strict=False) for e in entries)


def _trusted(address: IPAddress) -> bool:
    return any(address in net for net in _trusted_networks(tuple(settings.TRUSTED_PROXIES)))


def client_address(peer: str | None, forwarded_for: str | None) -> str | None:
    """The client's IP address, as text, or None when there is no valid one.

    The peer (REMOTE_ADDR, the TCP client) is the client unless it is one of
    ``settings.TRUSTED_PROXIES``; then the client is the rightmost X-Forwarded-For entry that is
    not a trusted proxy (each proxy appends the address it was reached from), or the leftmost if
    all are. This is uvicorn's ``--forwarded-allow-ips`` rule, so the two agree whether or not
    uvicorn already rewrote the peer. Anything that does not parse as an address gives None:
    a header's text never reaches the lockout counter or the audit trail.
    """
    address = _address(peer)
    if address is None or not forwarded_for or not _trusted(address):
        return str(address) if address is not None else None
    entries = forwarded_for.split(",")
    for entry in reversed(entries):
        address = _address(entry)
        if address is None or not _trusted(address):
            return str(address) if address is not None else None
    first = _address(entries[0])
    return str(first) if first is not None else None


def request_client_ip(request: HttpRequest) -> str | None:
    """The client address of a Django request (see :func:`client_address`)."""
    return client_address(request.META.get("REMOTE_ADDR"), request.META.get("HTTP_X_FORWARDED_FOR"))
