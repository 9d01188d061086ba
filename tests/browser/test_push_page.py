"""Push in Chromium, served by uvicorn (the event stream needs ASGI) with a real agent: a click on
Start shows RUNNING, and the operation card "succeeded", within a time the slow fallback polls
(10-15 s) cannot explain, through the stream's events; no swap ever puts a whole page in a panel
and the page is never reloaded."""

from __future__ import annotations

import re
import time
import uuid

import pytest

from console.models import Host, Operation
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


def _open_slow_starting_container(page, web, make_user, agent, tmp_path, prefix: str) -> tuple[str, str]:
    """A busybox container whose Start takes a second (a pre-start hook sleeps), its page open
    in ``page`` as an admin with the event stream connected: its name and the console's base URL.
    The operation card's first read, made as the card appears, then finds the start still
    running; without the hook the agent may finish before that first read."""
    make_user(f"{prefix}-admin", role="admin", password=PASSWORD)
    host = Host.objects.get(slug=agent.slug)
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
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
    login(page, base, f"{prefix}-admin")
    page.goto(f"{base}/containers/{container.pk}/")
    page.on("dialog", lambda dialog: dialog.accept())
    page.wait_for_function(STREAM_OPEN, timeout=10000)
    return name, base


def test_start_and_freeze_show_within_a_second_or_two_by_push(
    browser, page, web, make_user, start_agent, tmp_path
):
    name, base = _open_slow_starting_container(page, web, make_user, start_agent(), tmp_path, "push")
    page.evaluate("() => { window.__loaded = 'once'; }")  # gone if the page ever reloads
    page.evaluate(WATCH)

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


def test_an_event_that_comes_while_the_cards_read_is_on_its_way_is_not_lost(
    page, web, make_user, start_agent, tmp_path
):
    """The card replaces itself (outerHTML) with each read. An event that came while a read was on
    its way was queued on the old card (hx-sync queue last), and htmx drops a request of an element
    no longer in the page: the card kept the state read before the event until its 10-s poll. Here
    the card's first read is held in the browser until the operation has ended and its event has
    come, then answered with what the server said before: the card must read itself again."""
    _open_slow_starting_container(page, web, make_user, start_agent(), tmp_path, "race")

    held: list[str] = []
    card_url = re.compile(r"/operations/(\d+)/card/")

    def hold_first_read(route):
        if held:
            route.continue_()
            return
        answer = route.fetch()  # the server's answer now: the operation has not ended
        op_id = int(card_url.search(route.request.url).group(1))
        wait_for(lambda: Operation.objects.get(pk=op_id).is_terminal, 30, what="the operation's end")
        time.sleep(1.0)  # its event reaches the page meanwhile
        route.fulfill(response=answer)
        held.append(answer.text())

    page.route(card_url, hold_first_read)
    page.locator("#container-state").get_by_role("button", name="Start", exact=True).click()
    for _ in range(300):  # (the handler runs while the page is waited on)
        if held:
            break
        page.wait_for_timeout(100)
    assert held and 'data-status="succeeded"' not in held[0], held
    page.locator("#action-result section.operation[data-status=succeeded]").wait_for(timeout=3000)
    page.unroute(card_url)
    page.locator("#container-state").get_by_role("button", name="Stop", exact=True).click()
    page.locator("#container-state dd.state", has_text="STOPPED").wait_for(timeout=60000)
