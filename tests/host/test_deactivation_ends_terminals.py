"""Deactivating a user ends their open browser terminal, for real (uvicorn, websocket, agent, pty)."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from websockets.sync.client import connect

from console import user_services
from console.models import Host, Operation
from console.operations import RequestContext
from containers import services, terminal
from containers.models import Container
from tests.host.helpers import browser_session, wait_terminal
from tests.hosttools import wait_for

pytestmark = pytest.mark.host
CTX = RequestContext(ip="127.0.0.1", request_id="deactivation-test")


def test_deactivating_a_user_closes_their_open_terminal(
    admin, superuser, local_agent, web, redis_url, settings
):
    settings.REDIS_URL = redis_url  # the Redis the agent and uvicorn relay terminals through
    host = Host.objects.get(slug=local_agent.slug)
    name = f"deact-{uuid.uuid4().hex[:6]}"
    op = wait_terminal(services.create_container(actor=admin, ctx=CTX, host=host, name=name))
    c = Container.objects.get(pk=op.result["container_id"])
    wait_terminal(services.start_container(actor=admin, ctx=CTX, container=c))
    c.refresh_from_db()
    origin = f"http://{web}"
    key, cookie = browser_session(admin)
    ticket = terminal.issue_ticket(actor=admin, ctx=CTX, container=c, origin=origin, session_key=key)
    with connect(f"ws://{web}/ws/terminal/{ticket.token}/", origin=origin, additional_headers=cookie) as ws:
        ws.send(json.dumps({"type": "input", "data": "echo ready-$((6*7))\r"}))
        seen, deadline = b"", time.monotonic() + 15
        while b"ready-42" not in seen and time.monotonic() < deadline:
            frame = ws.recv(timeout=15)
            seen += frame if isinstance(frame, bytes) else b""
        assert b"ready-42" in seen
        session = Operation.objects.get(kind="container.terminal", actor=admin)

        user_services.deactivate_user(actor=superuser, ctx=CTX, user=admin)

        # The page is told the session is over, without the browser doing anything.
        info, deadline = None, time.monotonic() + 20
        while info is None and time.monotonic() < deadline:
            frame = ws.recv(timeout=20)
            if isinstance(frame, str):
                info = json.loads(frame)
        assert info is not None and info["type"] == "exit"
    session = wait_for(
        lambda: Operation.objects.filter(pk=session.pk, status="succeeded").first(),
        20,
        what="the session to end",
    )
    from console.models import AuditEvent

    row = AuditEvent.objects.get(action="user.deactivate", result="succeeded")
    assert row.after["terminals_ended"] == [session.pk]
