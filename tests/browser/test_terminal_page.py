"""The terminal page in Chromium, served by uvicorn: the ticket is bound to the page's session,
and the browser's own session cookie on the websocket opens it (issue 12.10)."""

from __future__ import annotations

import uuid

import pytest

from console.models import AuditEvent, Host
from console.operations import RequestContext
from containers import services, terminal
from containers.models import Container
from tests.host.helpers import browser_session, wait_terminal

pytestmark = [pytest.mark.host, pytest.mark.browser]
CTX = RequestContext(ip="127.0.0.1", request_id="browser-terminal")


def test_terminal_page_opens_a_shell_with_the_pages_own_session(page, make_user, local_agent, web):
    admin = make_user("browser-term", role="admin", password="browser-password-123")
    host = Host.objects.get(slug=local_agent.slug)
    name = f"bt-{uuid.uuid4().hex[:6]}"
    c = Container.objects.get(
        pk=wait_terminal(services.create_container(actor=admin, ctx=CTX, host=host, name=name)).result[
            "container_id"
        ]
    )
    assert wait_terminal(services.start_container(actor=admin, ctx=CTX, container=c)).status == "succeeded"

    page.goto(f"http://{web}/login/")
    page.fill("input[name=username]", "browser-term")
    page.fill("input[name=password]", "browser-password-123")
    page.click("button[type=submit]")
    page.wait_for_url(f"http://{web}/containers/")
    page.goto(f"http://{web}/containers/{c.pk}/terminal/")
    page.locator("#terminal-status", has_text="Connected.").wait_for(timeout=20000)
    page.locator("#terminal .xterm-helper-textarea").focus()
    page.keyboard.type("hostname\r")
    page.locator("#terminal .xterm-rows", has_text=name).wait_for(timeout=20000)
    assert not AuditEvent.objects.filter(action="container.terminal", result="refused").exists()

    # A ticket issued to another session of the same user, used from this browser, is refused
    # with its reason in the close frame (what the page shows as "Refused: ...").
    key, _ = browser_session(admin)
    c.refresh_from_db()
    ticket = terminal.issue_ticket(actor=admin, ctx=CTX, container=c, origin=f"http://{web}", session_key=key)
    closed = page.evaluate(
        """path => new Promise(done => {
            const ws = new WebSocket("ws://" + location.host + path);
            ws.onclose = event => done({code: event.code, reason: event.reason});
        })""",
        f"/ws/terminal/{ticket.token}/",
    )
    assert closed["code"] == 4403 and "another browser session" in closed["reason"]
    assert AuditEvent.objects.filter(action="container.terminal", result="refused", actor=admin).count() == 1
