"""The terminal websocket (ASGI): checks the Origin and the ticket, then relays through Redis.

``/ws/terminal/<ticket>/``. The page gets the ticket with a POST (CSRF-protected, audited); the
websocket spends it, from the same origin and browser session (its session cookie). Bytes from
the agent's pty arrive on a Redis list and go to the browser as binary frames; keystrokes and
resizes go the other way as JSON.
"""

from __future__ import annotations

import asyncio
import json
import re
from contextlib import suppress
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import urlsplit

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http.request import validate_host

from console.errors import ServiceError
from console.middleware import client_address, client_request_id, new_request_id
from console.operations import RequestContext

_PATH = re.compile(r"^/ws/terminal/(?P<token>[A-Za-z0-9_-]{20,64})/$")


def origin_allowed(origin: str, host: str) -> bool:
    """Same origin only: the Origin's host must be the Host the browser connected to, and allowed."""
    if not origin or not host:
        return False
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    return parts.netloc == host and validate_host(
        host.rsplit(":", 1)[0] if "]" not in host else host, settings.ALLOWED_HOSTS
    )


def _session_key(cookie_header: str) -> str | None:
    """The session cookie's value from a Cookie header (None when absent or unparsable)."""
    cookies = SimpleCookie()
    try:
        cookies.load(cookie_header)
    except CookieError:
        return None
    morsel = cookies.get(settings.SESSION_COOKIE_NAME)
    return morsel.value if morsel is not None and morsel.value else None


async def terminal_app(scope: dict, receive: Any, send: Any) -> None:
    import redis.asyncio as aioredis

    from containers import terminal

    message = await receive()
    if message["type"] != "websocket.connect":
        return
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    match = _PATH.match(scope.get("path", ""))
    origin = headers.get("origin", "")
    client = scope.get("client") or (None, None)
    # The same client address as a page's (trusted proxies only, a parsed address or None).
    ip = client_address(client[0], headers.get("x-forwarded-for"))
    # As for pages (issue 12.4): the id is the server's; a client's X-Request-ID is only kept apart.
    ctx = RequestContext(
        ip=ip, request_id=new_request_id(), client_request_id=client_request_id(headers.get("x-request-id"))
    )
    try:
        # Every refusal (unknown, used or expired ticket, wrong origin or session) is audited there.
        op = await sync_to_async(terminal.open_session)(
            token=match["token"] if match else None,
            origin=origin,
            origin_ok=origin_allowed(origin, headers.get("host", "")),
            session_key=_session_key(headers.get("cookie", "")),
            ctx=ctx,
        )
    except ServiceError as exc:
        # Accepted only to be closed at once: a close before the handshake reaches the page as a
        # bare HTTP 403, and the page could not say why (a close frame carries code and reason).
        await send({"type": "websocket.accept"})
        reason = exc.message.encode()[:120].decode(errors="ignore")
        await send({"type": "websocket.close", "code": 4000 + exc.status_code, "reason": reason})
        return
    await send({"type": "websocket.accept"})
    r = aioredis.from_url(settings.REDIS_URL)
    reason = "the browser closed the terminal"
    slug = op.host.slug
    in_key, out_key, exit_key = (
        key(slug, op.pk) for key in (terminal.in_key, terminal.out_key, terminal.exit_key)
    )

    async def from_browser() -> None:
        while True:
            event = await receive()
            if event["type"] == "websocket.disconnect":
                await r.rpush(in_key, json.dumps({"type": "close"}))
                return
            text = event.get("text")
            if text is None and event.get("bytes") is not None:
                text = json.dumps({"type": "input", "data": event["bytes"].decode(errors="replace")})
            if text:
                await r.rpush(in_key, text[:65536])
                await r.expire(in_key, 300)

    async def to_browser() -> str:
        while True:
            item = await r.blpop([exit_key, out_key], timeout=1)
            if item is None:
                continue
            key, data = item
            if (key.decode() if isinstance(key, bytes) else key) == exit_key:
                # Drain what the program printed last, then tell the page why it ended.
                while chunk := await r.lpop(out_key):
                    await send({"type": "websocket.send", "bytes": chunk})
                info = json.loads(data)
                await send({"type": "websocket.send", "text": json.dumps({"type": "exit", **info})})
                await send({"type": "websocket.close", "code": 1000})
                return str(info.get("reason", "the program ended"))
            await send({"type": "websocket.send", "bytes": data})

    inbound = asyncio.ensure_future(from_browser())
    outbound = asyncio.ensure_future(to_browser())
    try:
        done, pending = await asyncio.wait({inbound, outbound}, return_when=asyncio.FIRST_COMPLETED)
        if outbound in done and not outbound.cancelled() and outbound.exception() is None:
            reason = outbound.result()
        for task in pending:
            task.cancel()
        if inbound in done:  # the browser left: give the agent a moment to end the program
            with suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(outbound, timeout=10)
    finally:
        await r.aclose()
        await sync_to_async(terminal.close_session)(op=op, ctx=ctx, reason=reason)
