"""The browser terminal for real: uvicorn, a websocket, the agent's pty, a busybox shell."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from console.errors import Forbidden
from console.models import AuditEvent, Host, Operation
from console.operations import RequestContext
from containers import services, terminal
from containers.models import Container
from tests.host.helpers import wait_terminal
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

    # Viewers get no ticket.
    with pytest.raises(Forbidden):
        terminal.issue_ticket(actor=viewer, ctx=CTX, container=c, origin=origin)

    ticket = terminal.issue_ticket(actor=admin, ctx=CTX, container=c, origin=origin)
    url = f"ws://{web}/ws/terminal/{ticket.token}/"
    # Another origin is refused before the ticket is spent.
    with pytest.raises(InvalidStatus):
        connect(url, origin="http://evil.example", open_timeout=5)
    with connect(url, origin=origin, open_timeout=10) as ws:
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
    with pytest.raises(InvalidStatus):
        connect(url, origin=origin, open_timeout=5)
    assert Operation.objects.filter(kind="container.terminal").count() == 1

    # A shell that exits ends the session and tells the page why.
    ticket = terminal.issue_ticket(actor=admin, ctx=CTX, container=c, origin=origin)
    with connect(f"ws://{web}/ws/terminal/{ticket.token}/", origin=origin, open_timeout=10) as ws:
        ws.send(json.dumps({"type": "input", "data": "exit 0\r"}))
        info = None
        deadline = time.monotonic() + 15
        while info is None and time.monotonic() < deadline:
            frame = ws.recv(timeout=15)
            if isinstance(frame, str):
                info = json.loads(frame)
        assert info == {"type": "exit", "code": 0, "reason": "the program ended"}


def test_an_expired_ticket_is_refused(admin, local_agent, web):
    from datetime import timedelta

    from django.utils import timezone

    from containers.models import TerminalTicket

    host = Host.objects.get(slug=local_agent.slug)
    c = Container.objects.create(host=host, name="ghost", lxc_path=local_agent.lxc_path, state="RUNNING")
    ticket = terminal.issue_ticket(actor=admin, ctx=CTX, container=c, origin=f"http://{web}")
    TerminalTicket.objects.filter(pk=ticket.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(InvalidStatus):
        connect(f"ws://{web}/ws/terminal/{ticket.token}/", origin=f"http://{web}", open_timeout=5)
    assert not Operation.objects.filter(kind="container.terminal").exists()
