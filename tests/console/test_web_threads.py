"""The web worker runs HTTP requests on at most WEB_THREADS long-lived threads (console.asgi):
Django's ASGI handler would make a thread per request, so 20 requests in flight meant 20 threads,
each with its own malloc arena and database connection (the worker grew from 127 to 205 MB in
bench/pages.py's stress). The requests past the limit wait in the event loop."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.database import session_database_url

ROOT = Path(__file__).resolve().parents[2]

# In a child process, as a web worker runs it: the ASGI application, 20 requests at once, and the
# thread each ran its view code in (the request_started receivers run in the request's thread).
_CHILD = textwrap.dedent(
    """
    import asyncio, json, threading
    from console.asgi import application
    from django.core.signals import request_started

    threads = []
    request_started.connect(lambda **kw: threads.append(threading.current_thread().name), weak=False)

    async def one(path):
        sent, asked = [], []
        async def receive():
            if asked:  # after the body: the client stays connected
                await asyncio.Event().wait()
            asked.append(1)
            return {"type": "http.request", "body": b"", "more_body": False}
        async def send(message):
            sent.append(message)
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
            "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
            "query_string": b"", "headers": [(b"host", b"127.0.0.1")],
            "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80),
        }
        await application(scope, receive, send)
        return sent[0]["status"], dict(sent[0]["headers"]).get(b"server-timing", b"").decode()

    async def main():
        return await asyncio.gather(*(one("/login/") for _ in range(20)))

    answers = asyncio.run(main())
    print(json.dumps({"statuses": [a[0] for a in answers], "timings": [a[1] for a in answers],
                      "threads": threads}))
    """
)


@pytest.mark.django_db(transaction=True)
def test_twenty_requests_at_once_run_on_at_most_web_threads_threads():
    env = {
        **os.environ,
        "DATABASE_URL": session_database_url(),
        "DJANGO_SETTINGS_MODULE": "console.settings",
        "ALLOWED_HOSTS": "127.0.0.1",
        "HOST_WATCH_SECONDS": "0",
        "WEB_THREADS": "3",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    done = subprocess.run(
        [sys.executable, "-c", _CHILD], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["statuses"] == [200] * 20
    assert len(result["threads"]) == 20
    # Three threads of the worker's own, reused: not one new thread per request.
    assert set(result["threads"]) <= {"web-0_0", "web-1_0", "web-2_0"}, result["threads"]
    # Each answer says how long it waited for a thread and how long it took (Server-Timing, read by
    # the browser's developer tools and bench/click.py): 17 of the 20 had to wait.
    timings = [dict(re.findall(r"(\w+);dur=([\d.]+)", value)) for value in result["timings"]]
    assert all(t.keys() == {"wait", "app"} for t in timings), result["timings"]
    assert all(float(t["app"]) >= float(t["wait"]) for t in timings), result["timings"]
    assert sum(float(t["wait"]) > 0.5 for t in timings) >= 10, result["timings"]
