"""X-Forwarded-For is believed only from TRUSTED_PROXIES, over real HTTP to uvicorn as `make run` starts it.

Before, uvicorn trusted proxy headers from 127.0.0.1, which under `make run` is every client: a
new X-Forwarded-For on each try gave unlimited password guesses, and the audit trail stored
whatever the header said (a formula, in the CSV export). The server here is started with
scripts/web, the command `make run` execs, so the Makefile's flags are the ones tested.
"""

from __future__ import annotations

import csv
import http.client
import io
import os
import socket
import subprocess
import sys
import uuid
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest
from axes.models import AccessAttempt
from django.conf import settings

from console.models import AuditEvent
from console.operations import RequestContext, audit
from tests.database import session_database_url
from tests.hosttools import free_port, stop_process, wait_for
from tests.security.conftest import PASSWORD

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
ROOT = Path(settings.BASE_DIR)
HOSTILE = '=HYPERLINK("http://evil.example/x")'


@pytest.fixture
def serve():
    """Start scripts/web on a free port with the given TRUSTED_PROXIES; stopped (by PID) at the end."""
    started: list[subprocess.Popen] = []
    logs = ROOT / "var" / "test-logs"
    logs.mkdir(parents=True, exist_ok=True)

    def start(trusted: str) -> Browser:
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": session_database_url(),
            "ALLOWED_HOSTS": "127.0.0.1",
            "TRUSTED_PROXIES": trusted,
            "WEB_WORKERS": "1",
            "VENV_BIN": str(Path(sys.executable).parent),
        }
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        env.pop("FORWARDED_ALLOW_IPS", None)
        log = open(logs / f"web-proxies-{port}.log", "w")
        proc = subprocess.Popen(
            ["scripts/web", "127.0.0.1", str(port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        started.append(proc)

        def listening() -> bool:
            assert proc.poll() is None, (logs / f"web-proxies-{port}.log").read_text()[-2000:]
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_for(listening, 30, what="uvicorn (scripts/web)")
        return Browser(port)

    yield start
    for proc in started:
        stop_process(proc)


class Browser:
    """A minimal HTTP client with a cookie jar; every request may carry its own X-Forwarded-For."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict | None = None, forwarded: str | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Host": "127.0.0.1"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if forwarded is not None:
            headers["X-Forwarded-For"] = forwarded
        body = None
        if form is not None:
            form = {"csrfmiddlewaretoken": self.cookies.get("csrftoken", ""), **form}
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        for value in response.headers.get_all("Set-Cookie") or []:
            cookie = SimpleCookie(value)
            self.cookies.update({k: m.value for k, m in cookie.items()})
        conn.close()
        return response.status, data

    def log_in(self, username: str, password: str, forwarded: str | None = None) -> int:
        self.request("GET", "/login/", forwarded=forwarded)
        status, _ = self.request(
            "POST", "/login/", {"username": username, "password": password}, forwarded=forwarded
        )
        return status


def test_a_new_x_forwarded_for_per_try_does_not_escape_the_lockout(serve, make_user):
    make_user("alice", password=PASSWORD)
    browser = serve("")
    for i in range(12):
        status = browser.log_in("alice", "wrong-password", forwarded=f"203.0.113.{i + 1}")
        assert status in (200, 429), status
    status = browser.log_in("alice", PASSWORD, forwarded="198.51.100.99")
    assert status == 429, "the right password after 12 wrong ones must meet the lockout"
    # Every failure was counted for the real peer, none for a forged address.
    assert set(AccessAttempt.objects.filter(username="alice").values_list("ip_address", flat=True)) == {
        "127.0.0.1"
    }


def test_the_audit_trail_stores_the_real_peer_and_the_csv_is_inert(serve, make_user):
    # A user name a spreadsheet would read as a formula is a valid Django user name.
    make_user("@sue", role=None, superuser=True, password=PASSWORD)
    browser = serve("")
    assert browser.log_in("@sue", PASSWORD, forwarded=HOSTILE) == 302
    marker = f"probe-{uuid.uuid4().hex[:8]}"
    status, _ = browser.request(
        "POST", "/containers/999999/destroy/", {"confirm": HOSTILE, "note": marker}, forwarded=HOSTILE
    )
    assert status == 404
    row = AuditEvent.objects.get(params__note=marker)
    assert row.ip == "127.0.0.1" and row.result == "refused"
    audit(actor=None, ctx=RequestContext(), action="container.start", result="refused", target=HOSTILE)

    status, data = browser.request("GET", "/audit/?format=csv", forwarded="-1+1")
    assert status == 200
    rows = list(csv.reader(io.StringIO(data.decode(), newline="")))
    header, body = rows[0], rows[1:]
    for line in body:
        for cell in line:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (cell, line)
    by_id = {r[header.index("id")]: dict(zip(header, r, strict=True)) for r in body}
    mine = by_id[str(row.pk)]
    assert mine["ip"] == "127.0.0.1" and mine["actor"] == "'@sue"
    assert HOSTILE not in {r["ip"] for r in by_id.values()}
    assert "'" + HOSTILE in {r["target"] for r in by_id.values()}


def test_behind_a_listed_proxy_the_forwarded_client_is_believed_and_parsed(serve, make_user):
    make_user("bob", password=PASSWORD)
    make_user("carol", password=PASSWORD)
    make_user("dave", role=None, password=PASSWORD)
    browser = serve("127.0.0.1")
    assert browser.log_in("dave", PASSWORD, forwarded="203.0.113.50") == 302
    cases = [
        ("203.0.113.7", "203.0.113.7"),
        # Each proxy appends what it saw: the rightmost address that is not a trusted proxy.
        ("198.51.100.1, 203.0.113.8, 127.0.0.1", "203.0.113.8"),
        ("[2001:db8::5]:4711", "2001:db8::5"),
        (HOSTILE, None),
        ("203.0.113.9, not-an-address", None),
    ]
    for forwarded, expected in cases:
        marker = f"probe-{uuid.uuid4().hex[:8]}"
        status, _ = browser.request(
            "POST", "/containers/999999/destroy/", {"note": marker}, forwarded=forwarded
        )
        assert status == 404
        assert AuditEvent.objects.get(params__note=marker).ip == expected, forwarded
    # The lockout counts the forwarded client: the proxy's other clients are not locked out with it.
    for _ in range(settings.AXES_FAILURE_LIMIT):
        browser.log_in("bob", "wrong-password", forwarded="203.0.113.20")
    assert browser.log_in("bob", PASSWORD, forwarded="203.0.113.20") == 429
    assert browser.log_in("bob", PASSWORD, forwarded="203.0.113.21") == 302
    assert set(AccessAttempt.objects.filter(username="bob").values_list("ip_address", flat=True)) >= {
        "203.0.113.20"
    }
    # ... and an address that does not parse is counted as no address, never as the header's text.
    browser = serve("127.0.0.1")
    browser.log_in("carol", "wrong-password", forwarded=HOSTILE)
    assert HOSTILE not in set(AccessAttempt.objects.values_list("ip_address", flat=True))


def test_an_entry_of_trusted_proxies_that_is_not_an_address_stops_the_start(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from console import settings as console_settings

    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, proxy.example")
    with pytest.raises(ImproperlyConfigured, match="'proxy.example' is not an IP address or network"):
        console_settings._networks("TRUSTED_PROXIES")
    monkeypatch.setenv("TRUSTED_PROXIES", " 10.1.2.3 ,2001:db8::/32,")
    assert console_settings._networks("TRUSTED_PROXIES") == ["10.1.2.3/32", "2001:db8::/32"]
