"""A native container destroyed while its pages are open (by another user): the open container
page says what happened, once, with a link to the list, and every polled partial of its pages
(state, operations, a file listing) answers a small notice with 286, never a whole page."""

from __future__ import annotations

import uuid

import pytest

from console.models import Host, Operation
from console.operations import RequestContext
from containers import services
from containers.models import Container
from tests.browser.helpers import PASSWORD, SHOTS, busybox, login
from tests.browser.test_domain_page import _polling_partials, _walk_partials
from tests.host.helpers import wait_terminal
from tests.hosttools import wait_for

pytestmark = [pytest.mark.host, pytest.mark.browser]
CTX = RequestContext(ip="127.0.0.1", request_id="browser-vanished-test")


def test_destroyed_container_pages_say_so_and_stop_polling(
    browser, page, live_server, make_user, start_agent
):
    make_user("gone-admin", role="admin", password=PASSWORD)
    other = make_user("gone-other", role="admin")
    agent = start_agent()
    host = Host.objects.get(slug=agent.slug)
    name = f"gone-{uuid.uuid4().hex[:6]}"
    busybox(agent.lxc_path, name)
    container = wait_for(
        lambda: Container.objects.filter(host=host, name=name).exclude(config_text="").first(),
        20,
        what="the container in the inventory",
    )
    op = wait_terminal(services.start_container(actor=other, ctx=CTX, container=container), 60)
    assert op.status == "succeeded", op.error

    login(page, live_server.url, "gone-admin")
    files = page.context.new_page()
    files.goto(f"{live_server.url}/containers/{container.pk}/files/")
    files.click("button:has-text('List')")
    files.locator("#files-result table.files").wait_for(timeout=30000)
    page.goto(f"{live_server.url}/containers/{container.pk}/")
    page.locator("#container-state dd.state", has_text="RUNNING").wait_for(timeout=10000)
    partials = _polling_partials(page) + _polling_partials(files)
    assert {target for _, target in partials} >= {"container-state", "files-result"}
    bodies: list[str] = []
    page.on("response", lambda r: bodies.append(r.text()) if r.request.headers.get("hx-request") else None)

    destroy = wait_terminal(
        services.destroy_container(
            actor=other, ctx=CTX, container=Container.objects.get(pk=container.pk), stop_first=True
        ),
        90,
    )
    assert destroy.status == "succeeded", destroy.error
    notice = page.locator("#container-state .gone")
    notice.wait_for(timeout=15000)
    assert f"The container {name} was destroyed by gone-other (operation #{destroy.pk}" in notice.inner_text()
    assert notice.locator("a").get_attribute("href") == "/containers/"
    page.wait_for_timeout(4500)  # more rounds of the 2 s poll, had it not stopped
    page.screenshot(path=str(SHOTS / "browser-container-destroyed.png"), full_page=True)
    assert page.locator("header.topbar").count() == 1 and page.locator(".gone").count() == 1
    assert f"#{destroy.pk}" in page.inner_text("#container-ops")
    assert not any("<html" in body for body in bodies)
    for status, body in _walk_partials(page, partials):
        assert "<html" not in body, body[:300]
        assert status == 286, (status, body[:300])
    assert Operation.objects.filter(kind="container.destroy", status="succeeded").count() == 1
