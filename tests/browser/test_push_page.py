"""Push in Chromium, served by uvicorn (the event stream needs ASGI) with a real agent: a click on
Start shows RUNNING, and the operation card "succeeded", within a time the slow fallback polls
(10-15 s) cannot explain, through the stream's events; no swap ever puts a whole page in a panel
and the page is never reloaded."""

from __future__ import annotations

import time
import uuid

import pytest

from console.models import Host
from containers.models import Container
from tests.browser.helpers import PASSWORD, busybox, login
from tests.hosttools import wait_for

pytestmark = [pytest.mark.host, pytest.mark.browser]

WATCH = """() => {
    window.__push = {fullPages: [], triggers: []};
    document.body.addEventListener("htmx:beforeSwap", e => {
        if (/<html|<!doctype/i.test(e.detail.serverResponse || "")) {
            window.__push.fullPages.push(e.detail.requestConfig.path);
        }
    });
    document.body.addEventListener("htmx:beforeRequest", e => {
        const t = e.detail.requestConfig.triggeringEvent;
        window.__push.triggers.push([e.detail.elt.id, t ? t.type : ""]);
    });
}"""
STREAM_OPEN = """() => {
    const s = document.body["htmx-internal-data"].sseEventSource;
    return !!s && s.readyState === 1;
}"""


def _click_until(page, button: str, wanted: str) -> float:
    page.evaluate("() => { window.__push.triggers = []; }")
    started = time.monotonic()
    page.locator("#container-state").get_by_role("button", name=button, exact=True).click()
    page.locator("#container-state dd.state", has_text=wanted).wait_for(timeout=30000)
    return time.monotonic() - started


def test_start_and_freeze_show_within_a_second_or_two_by_push(
    browser, page, web, make_user, start_agent, tmp_path
):
    make_user("push-admin", role="admin", password=PASSWORD)
    agent = start_agent()
    host = Host.objects.get(slug=agent.slug)
    name = f"push-{uuid.uuid4().hex[:6]}"
    # Start takes a second (a pre-start hook sleeps), so the operation card's first read, made as
    # it appears, finds it still running, and only its operation's event can show "succeeded"
    # before the 10-s poll. Without the hook the agent may finish before that first read.
    hook = tmp_path / "slow-start"
    hook.write_text("#!/bin/sh\nsleep 1\n")
    hook.chmod(0o755)
    busybox(agent.lxc_path, name, f"lxc.hook.pre-start = {hook}")
    container = wait_for(
        lambda: Container.objects.filter(host=host, name=name).exclude(config_text="").first(),
        20,
        what="the container in the inventory",
    )
    base = f"http://{web}"
    login(page, base, "push-admin")
    page.goto(f"{base}/containers/{container.pk}/")
    page.evaluate("() => { window.__loaded = 'once'; }")  # gone if the page ever reloads
    page.evaluate(WATCH)
    page.on("dialog", lambda dialog: dialog.accept())
    page.wait_for_function(STREAM_OPEN, timeout=10000)

    took = _click_until(page, "Start", "RUNNING")
    card = page.locator("#action-result section.operation[data-status=succeeded]")
    card.wait_for(timeout=3000)
    triggers = page.evaluate("() => window.__push.triggers")
    assert took < 3.0, (took, triggers)
    # The panels were fetched because of the stream's events (not the 10-15 s polls).
    assert any(elt == "container-state" and kind.startswith("sse:") for elt, kind in triggers), triggers
    assert any(kind.startswith("sse:operation-") for _, kind in triggers), triggers

    took = _click_until(page, "Freeze", "FROZEN")
    assert took < 3.0, took
    page.locator("#action-result section.operation[data-status=succeeded]").wait_for(timeout=3000)

    # The list page follows too: unfreezing elsewhere (another tab) shows in its rows.
    other = browser.new_context().new_page()
    login(other, base, "push-admin")
    other.goto(f"{base}/containers/")
    other.wait_for_function(STREAM_OPEN, timeout=10000)
    row = other.locator("#container-rows tr", has_text=name)
    assert "FROZEN" in row.inner_text()
    started = time.monotonic()
    page.locator("#container-state").get_by_role("button", name="Unfreeze", exact=True).click()
    row.filter(has_text="RUNNING").wait_for(timeout=30000)
    assert time.monotonic() - started < 3.0
    other.context.close()

    assert page.evaluate("() => window.__loaded") == "once"
    assert page.evaluate("() => window.__push.fullPages") == []
    page.locator("#container-state").get_by_role("button", name="Stop", exact=True).click()
    page.locator("#container-state dd.state", has_text="STOPPED").wait_for(timeout=60000)
