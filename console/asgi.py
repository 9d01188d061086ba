"""ASGI entry point: Django for HTTP, the terminal relay for websockets."""

from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
django_app = get_asgi_application()

from console import hostwatch  # noqa: E402
from containers.terminal_ws import terminal_app  # noqa: E402  (needs Django set up)

# Records the running operations of hosts known dead as failed (console.hostwatch).
hostwatch.start()

# Django runs each HTTP request's sync code (middleware, view, template) in a thread of its own,
# made for that request (asgiref's ThreadSensitiveContext): with 20 requests in flight, 20 threads,
# each with its own malloc arena and database connection, which glibc keeps after they end (the
# worker went from 127 to 205 MB). Instead, a request borrows one of WEB_THREADS long-lived
# threads (Django's own context then adds none) and waits in the event loop while all are busy:
# with the GIL more threads would not serve faster, and the threads' database connections live
# out CONN_MAX_AGE instead of being opened per request. The event stream is async and lives as
# long as its tab: it keeps a thread of its own for its few sync calls, as before.
WEB_THREADS = max(1, int(os.environ.get("WEB_THREADS", "4")))
_free_threads: asyncio.Queue[ThreadPoolExecutor] | None = None


def _threads() -> asyncio.Queue[ThreadPoolExecutor]:
    global _free_threads
    if _free_threads is None:
        _free_threads = asyncio.Queue()
        for n in range(WEB_THREADS):
            _free_threads.put_nowait(ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"web-{n}"))
    return _free_threads


def _is_stream(scope: dict) -> bool:
    path = scope["path"].removeprefix(scope.get("root_path", ""))
    return path == "/events/"


async def application(scope: dict, receive, send) -> None:
    if scope["type"] == "websocket":
        await terminal_app(scope, receive, send)
    elif scope["type"] != "http" or _is_stream(scope):
        await django_app(scope, receive, send)
    else:
        arrived = time.perf_counter()
        free = _threads()
        executor = await free.get()
        waited = time.perf_counter() - arrived
        try:
            async with ThreadSensitiveContext(executor=executor):
                await django_app(scope, receive, _timed(send, arrived, waited))
        finally:
            free.put_nowait(executor)


def _timed(send, arrived: float, waited: float):
    """``send`` adding a Server-Timing header to the response: how long the request waited for a
    thread (``wait``) and how long from its arrival to its answer (``app``), in ms (the browser's
    developer tools show them; bench/click.py reads them)."""

    async def timed_send(message: dict) -> None:
        if message["type"] == "http.response.start":
            took = (time.perf_counter() - arrived) * 1000
            value = f"wait;dur={waited * 1000:.1f}, app;dur={took:.1f}".encode()
            message = {**message, "headers": [*message.get("headers", []), (b"server-timing", value)]}
        await send(message)

    return timed_send
