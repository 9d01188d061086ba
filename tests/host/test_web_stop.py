"""`make stop` ends the web server promptly even while a page's event stream is open.

uvicorn waits for every response in flight before it exits, and an event stream lasts up to
``console.stream.MAX_SECONDS`` (5 minutes): with a tab open, `make stop` left the web serving (and
holding its port, so `make run` could not start again) for minutes. scripts/web bounds the wait
(``--timeout-graceful-shutdown``); the server is started with scripts/web, as `make run` does.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from tests.database import session_database_url
from tests.hosttools import free_port, stop_process, wait_for

pytestmark = [pytest.mark.host, pytest.mark.django_db(transaction=True)]
ROOT = Path(settings.BASE_DIR)


def test_sigterm_ends_the_web_within_seconds_with_a_stream_open(make_user, redis_url):
    user = make_user("stopper", role="admin")
    client = Client()
    client.force_login(user)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": session_database_url(),
        "REDIS_URL": redis_url,
        "ALLOWED_HOSTS": "127.0.0.1",
        "WEB_WORKERS": "1",
        "VENV_BIN": str(Path(sys.executable).parent),
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    web = subprocess.Popen(
        ["scripts/web", "127.0.0.1", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def listening() -> bool:
            assert web.poll() is None
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_for(listening, 30, what="uvicorn (scripts/web)")
        stream = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        stream.request("GET", "/events/", headers={"Host": "127.0.0.1", "Cookie": f"sessionid={session}"})
        response = stream.getresponse()
        assert response.status == 200 and response.read1(64).startswith(b"retry:")
        started = time.monotonic()
        web.send_signal(signal.SIGTERM)  # what `make stop` sends
        web.wait(timeout=30)
        assert time.monotonic() - started < 15
        stream.close()
    finally:
        stop_process(web)
