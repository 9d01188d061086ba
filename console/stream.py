"""One server-sent-events stream per open page: the events of console.events the user may see.

Each event is relayed as SSE messages whose names say which panels should refresh:

- an operation: ``operation-<id>``, and when its status changed (not for progress or log lines)
  ``lock-<hash of its lock key>`` (the panels of its target, see :func:`lock_event`) and
  ``operations`` (the operations list);
- a container row: ``container-<id>`` and ``containers`` (the container list);
- a line of ``lxc-monitor`` on a host's agent: ``lxc-state-<host id>``, whose data is the row the
  host's monitor page inserts (the one message that carries what the page shows).

The page's htmx (the vendored SSE extension) triggers the panel's usual hx-get on them; the message
carries no content a page shows. A comment every KEEPALIVE seconds keeps proxies from closing an
idle stream and finds a client that went away. The stream ends after MAX_SECONDS: the browser
reconnects (the ``retry`` below), and the login and the user's roles are read again then. While
it waits it holds no database connection, only one Redis connection, closed when it ends.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import connections
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.views.decorators.http import require_safe

from console import access
from console.events import CHANNEL

logger = logging.getLogger(__name__)

KEEPALIVE = 15.0
MAX_SECONDS = 300.0
RETRY_MS = 1000


# Messages that make a whole list page fetch itself again (the container list, the operations
# list). Each host's changes send them, so unthrottled a list page would refresh as often as all
# hosts together change something, each refresh costing more as the inventory grows: quadratic in
# hosts (bench/hosts.py). At most one per STREAM_LIST_REFRESH_SECONDS per stream: the first at once,
# the last of a burst when its window ends, so no change is missed.
LIST_MESSAGES = frozenset({"containers", "operations"})


class ListThrottle:
    """Which list messages a stream sends now, and which it holds until their window ends."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.sent: dict[str, float] = {}
        self.due: dict[str, float] = {}

    def admit(self, name: str, now: float) -> bool:
        """Send ``name`` now (True), or hold it, once, until its window ends (False)."""
        if self.interval <= 0 or name not in LIST_MESSAGES:
            return True
        if name in self.due:
            return False
        last = self.sent.get(name)
        if last is None or now - last >= self.interval:
            self.sent[name] = now
            return True
        self.due[name] = last + self.interval
        return False

    def next_due(self) -> float | None:
        return min(self.due.values(), default=None)

    def flush(self, now: float) -> list[str]:
        """The held messages whose window has ended: send them now."""
        ready = [name for name, at in self.due.items() if at <= now]
        for name in ready:
            del self.due[name]
            self.sent[name] = now
        return ready


def lock_event(lock_key: str) -> str:
    """The SSE name of the operations on one lock key (a lock key has colons and paths)."""
    return "lock-" + hashlib.sha256(lock_key.encode()).hexdigest()[:16]


def messages_for(event: dict) -> list[str]:
    """The SSE names one published event is relayed as."""
    kind, pk = event.get("kind"), event.get("id")
    if kind == "operation":
        if event.get("minor"):  # progress or log: only its card changes
            return [f"operation-{pk}"]
        names = [f"operation-{pk}", "operations"]
        if event.get("lock_key"):
            names.insert(1, lock_event(str(event["lock_key"])))
        return names
    if kind == "container":
        return [f"container-{pk}", "containers"]
    if kind == "lxc-state":
        return [f"lxc-state-{event.get('host_id')}"]
    return []


def data_for(event: dict) -> str:
    """An event's data line: its JSON, or for an lxc-monitor line the table row the host's monitor
    page inserts as it is (htmx sse-swap), escaped, on one line."""
    if event.get("kind") != "lxc-state":
        return json.dumps(event, separators=(",", ":"))
    from django.utils.html import format_html

    row = format_html(
        '<tr data-name="{}" data-state="{}"><td>{}</td><td><code>{}</code></td>'
        "<td>&#x27;{}&#x27; changed state to [{}]</td></tr>",
        *(str(event.get(k, "")) for k in ("name", "state", "at", "lxc_path", "name", "state")),
    )
    return " ".join(str(row).splitlines())


def _visible_hosts(request: HttpRequest) -> set[int] | None:
    """The host ids whose events the user may get (None: all); then the database connection is
    closed, as the stream that follows may last minutes."""
    try:
        return access.hosts_with_role(request.user, "view")
    finally:
        for connection in connections.all(initialized_only=True):
            if not connection.in_atomic_block:  # (a test's transaction stays open)
                connection.close()


async def _subscribe() -> tuple[Any, Any] | None:
    """A client and a pub/sub subscribed to the events channel, or None when Redis cannot be
    reached (closed again then)."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2)
    pubsub = client.pubsub()
    try:
        await pubsub.subscribe(CHANNEL)
    except Exception as exc:
        logger.warning("event stream: cannot subscribe (%s)", exc)
        await asyncio.shield(_close(pubsub, client))
        return None
    return client, pubsub


async def _relay(client: Any, pubsub: Any, host_ids: set[int] | None) -> AsyncIterator[str]:
    ends_at = time.monotonic() + MAX_SECONDS
    try:
        yield f"retry: {RETRY_MS}\n: connected\n\n"
        last_sent = time.monotonic()
        throttle = ListThrottle(settings.STREAM_LIST_REFRESH_SECONDS)
        while (now := time.monotonic()) < ends_at:
            wait = max(0.1, min(KEEPALIVE - (now - last_sent), ends_at - now))
            due = throttle.next_due()
            if due is not None:
                wait = max(0.01, min(wait, due - now))
            try:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=wait)
            except Exception as exc:  # Redis went away: end; the browser reconnects
                logger.warning("event stream: Redis failed (%s)", exc)
                return
            now = time.monotonic()
            chunk = "".join(f"event: {name}\ndata: {{}}\n\n" for name in throttle.flush(now))
            event = None
            if message is not None:
                try:
                    event = json.loads(message["data"])
                except (TypeError, ValueError):
                    event = None
            if isinstance(event, dict) and (host_ids is None or event.get("host_id") in host_ids):
                data = data_for(event)
                names = [name for name in messages_for(event) if throttle.admit(name, now)]
                chunk += "".join(f"event: {name}\ndata: {data}\n\n" for name in names)
            if chunk:
                yield chunk
                last_sent = now
            elif message is None and now - last_sent >= KEEPALIVE:
                yield ": keep-alive\n\n"
                last_sent = now
    finally:
        # Also on the client going away (Django cancels or closes this generator).
        await asyncio.shield(_close(pubsub, client))


async def _close(pubsub, client) -> None:
    try:
        await pubsub.aclose()
    finally:
        await client.aclose()


@require_safe
@login_required
async def events(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    from asgiref.sync import sync_to_async
    from django.core.handlers.asgi import ASGIRequest

    if not isinstance(request, ASGIRequest):
        # A WSGI server would hold a thread for the whole stream: 204 tells the browser not to
        # reconnect, and the page keeps its slow polls.
        return HttpResponse(status=204)
    host_ids = await sync_to_async(_visible_hosts)(request)
    subscribed = await _subscribe()
    if subscribed is None:
        # Redis down: no stream, so the browser does not count it as open (it would read every
        # panel again at each reconnect). EventSource retries an error with a growing delay, and
        # the page keeps its slow polls meanwhile.
        return HttpResponse("events unavailable", status=503, content_type="text/plain")
    response = StreamingHttpResponse(_relay(*subscribed, host_ids), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response
