"""The browser terminal for real: uvicorn, a websocket, the agent's pty, a busybox shell."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect
from websockets.typing import Origin

from console.errors import Forbidden
from console.models import AuditEvent, Host, Operation
from console.operations import RequestContext
from containers import services, terminal
from containers.models import Container
from tests.host.helpers import browser_session, wait_terminal
from tests.hosttools import wait_for

pytestmark = pytest.mark.host
CTX = RequestContext(ip="127.0.0.1", request_id="terminal-test")


def read_until(ws, needle: bytes, timeout: float = 10) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        frame = ws.recv(timeout=max(0.1, deadline - time.monotonic()))
        if isinstance(frame, bytes):
            seen += frame
    return seen


def test_terminal_session_runs_a_shell_in_the_container(admin, viewer, local_agent, web):
    host = Host.objects.get(slug=local_agent.slug)
    name = f"term-{uuid.uuid4().hex[:6]}"
    op = wait_terminal(services.create_container(actor=admin, ctx=CTX, host=host, name=name))
    c = Container.objects.get(pk=op.result["container_id"])
    wait_terminal(services.start_container(actor=admin, ctx=CTX, container=c))
    c.refresh_from_db()
    origin = f"http://{web}"

    key, cookie = browser_session(admin)
    # Viewers get no ticket.
    with pytest.raises(Forbidden):
        terminal.issue_ticket(actor=viewer, ctx=CTX, container=c, origin=origin, session_key=key)

    ticket = terminal.issue_ticket(actor=admin, ctx=CTX, container=c, origin=origin, session_key=key)
    url = f"ws://{web}/ws/terminal/{ticket.token}/"
    # Another origin is refused before the ticket is spent.
    assert refused(url, "http://evil.example", cookie) == "the terminal was opened from another origin"
    with connect(url, origin=origin, additional_headers=cookie, open_timeout=10) as ws:
        ws.send(json.dumps({"type": "resize", "cols": 120, "rows": 40}))
        ws.send(json.dumps({"type": "input", "data": "hostname; stty size\r"}))
        out = read_until(ws, b"40 120")
        assert name.encode() in out
    session = wait_for(
        lambda: Operation.objects.filter(kind="container.terminal", status="succeeded").first(),
        20,
        what="the session to end",
    )
    assert session.actor_id == admin.pk and session.result["reason"] == "the browser closed the terminal"
    assert session.worker == f"agent-{local_agent.slug}"
    assert "$ lxc-attach -P" in session.log
    opened = AuditEvent.objects.get(action="container.terminal", operation=session)
    closed = wait_for(
        lambda: AuditEvent.objects.filter(action="container.terminal.close", operation=session).first(),
        10,
        what="the close audit row",
    )
    assert opened.result == "accepted" and closed.result == "succeeded" and closed.actor_id == admin.pk

    # The ticket was single-use.
    assert "already used" in refused(url, origin, cookie)
    assert Operation.objects.filter(kind="container.terminal").count() == 1

    # A shell that exits ends the session and tells the page why.
    ticket = terminal.issue_ticket(actor=admin, ctx=CTX, container=c, origin=origin, session_key=key)
    url = f"ws://{web}/ws/terminal/{ticket.token}/"
    with connect(url, origin=origin, additional_headers=cookie, open_timeout=10) as ws:
        ws.send(json.dumps({"type": "input", "data": "exit 0\r"}))
        info = None
        deadline = time.monotonic() + 15
        while info is None and time.monotonic() < deadline:
            frame = ws.recv(timeout=15)
            if isinstance(frame, str):
                info = json.loads(frame)
        assert info == {"type": "exit", "code": 0, "reason": "the program ended"}


def refusals() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="container.terminal", result="refused").order_by("pk"))


def refused(url: str, origin: str, headers: dict | None = None) -> str:
    """Connect, and expect the server to close at once with a 44xx code; returns its reason."""
    ws = connect(url, origin=Origin(origin), additional_headers=headers or {}, open_timeout=5)
    with ws, pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code in (4403, 4404), closed.value
    return closed.value.rcvd.reason


def test_a_ticket_works_only_from_its_own_session_and_every_refusal_is_audited(admin, operator, host, web):
    """Issue 12.10: no cookie, another user's session, another session of the same user, a
    wrong Origin, a forged, a reused and an expired ticket are all refused, each with an
    audit row saying why; only the session the ticket was issued to opens the terminal."""
    from datetime import timedelta

    from django.utils import timezone

    from containers.models import TerminalTicket

    # No agent: its inventory sync would drop this row (and its tickets); none is needed to refuse.
    c = Container.objects.create(host=host, name="ghost", lxc_path="/var/lib/lxc", state="RUNNING")
    origin = f"http://{web}"
    key, cookie = browser_session(admin)
    _, admin_elsewhere = browser_session(admin)
    _, operator_cookie = browser_session(operator)
    ticket = terminal.issue_ticket(actor=admin, ctx=CTX, container=c, origin=origin, session_key=key)
    url = f"ws://{web}/ws/terminal/{ticket.token}/"

    attempts = [
        ({}, origin, None, "another browser session"),
        (operator_cookie, origin, operator, "another browser session"),
        (admin_elsewhere, origin, admin, "another browser session"),
        ({"Cookie": "sessionid=forged-session-key"}, origin, None, "another browser session"),
        # A client-chosen request id (an existing row's) is kept apart, never taken as the row's id.
        ({**cookie, "X-Request-ID": "chosen-by-client-1"}, "http://evil.example", admin, "another origin"),
    ]
    for headers, from_origin, actor, reason in attempts:
        said = refused(url, from_origin, headers)
        row = refusals()[-1]
        assert said == row.message  # the page can say why (close frame reason)
        assert reason in row.message and row.actor == actor, (headers, row.message, row.actor_name)
        assert row.host == host and row.target == c.target and row.params["origin"] == from_origin
        assert row.params["ticket"] == ticket.token[:8] and ticket.token not in str(row.params)
    assert len(refusals()) == len(attempts)
    chosen = refusals()[-1]
    assert chosen.client_request_id == "chosen-by-client-1" and chosen.request_id != "chosen-by-client-1"
    assert len(chosen.request_id) == 32 and len({r.request_id for r in refusals()}) == len(attempts)
    # None of them spent the ticket.
    ticket.refresh_from_db()
    assert ticket.used_at is None and not Operation.objects.filter(kind="container.terminal").exists()

    # A forged ticket (and a malformed path) from a logged-in browser.
    refused(f"ws://{web}/ws/terminal/{'A' * 43}/", origin, cookie)
    refused(f"ws://{web}/ws/terminal/not%20a%20ticket/", origin, cookie)
    forged = refusals()[-2:]
    assert all("unknown" in r.message and r.actor == admin and r.host is None for r in forged)

    # The right session opens it once (the session is queued; no agent runs here).
    with connect(url, origin=origin, additional_headers=cookie, open_timeout=10):
        pass
    assert Operation.objects.filter(kind="container.terminal", actor=admin).count() == 1
    refused(url, origin, cookie)
    assert "already used" in refusals()[-1].message

    expired = terminal.issue_ticket(actor=admin, ctx=CTX, container=c, origin=origin, session_key=key)
    TerminalTicket.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    refused(f"ws://{web}/ws/terminal/{expired.token}/", origin, cookie)
    assert "has expired" in refusals()[-1].message
    assert len(refusals()) == len(attempts) + 4
    assert Operation.objects.filter(kind="container.terminal").count() == 1


def test_the_ticket_view_binds_the_ticket_to_the_requesting_session(client, admin, host, web):
    """Through the page's own POST: the ticket it returns opens only with that page's cookie."""
    from django.conf import settings

    c = Container.objects.create(host=host, name="ghost2", lxc_path="/var/lib/lxc", state="RUNNING")
    client.force_login(admin)
    answer = client.post(f"/containers/{c.pk}/terminal/ticket/", HTTP_HOST=web)
    assert answer.status_code == 200, answer.content
    url = f"ws://{web}{answer.json()['path']}"
    _, other = browser_session(admin)
    refused(url, f"http://{web}", other)
    cookie = {
        "Cookie": f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    }
    with connect(url, origin=f"http://{web}", additional_headers=cookie, open_timeout=10):
        pass
    assert Operation.objects.filter(kind="container.terminal", actor=admin).count() == 1
