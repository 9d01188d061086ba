"""The "Run a command" form of a running container, as a user fills it: untouched (the browser
asks for a command, nothing is queued), the form's own example, a command that exits non-zero
(its status said plainly, not "Failed"), a command that cannot be split (refused, the typed text
kept), and typing that outlasts the page's live refresh (the text is not wiped)."""

from __future__ import annotations

import uuid

import pytest

from console.models import Host, Operation
from containers.models import Container
from tests.browser.helpers import PASSWORD, SHOTS, busybox, login
from tests.hosttools import wait_for

pytestmark = [pytest.mark.host, pytest.mark.browser]


def test_run_a_command_form(page, live_server, make_user, start_agent):
    make_user("attach-operator", role="operate", password=PASSWORD)
    agent = start_agent()
    host = Host.objects.get(slug=agent.slug)
    name = f"att-{uuid.uuid4().hex[:6]}"
    busybox(agent.lxc_path, name)
    container = wait_for(
        lambda: Container.objects.filter(host=host, name=name).exclude(config_text="").first(), 20, what="row"
    )
    login(page, live_server.url, "attach-operator")
    page.goto(f"{live_server.url}/containers/{container.pk}/")
    page.locator("#container-state").get_by_role("button", name="Start", exact=True).click()
    command = page.locator("input[name=command]")
    command.wait_for(timeout=30000)  # the form appears once RUNNING is shown
    run = page.get_by_role("button", name="Run with lxc-attach")

    # Untouched: the browser asks for the command; nothing is queued.
    before = Operation.objects.filter(kind="container.attach").count()
    run.click()
    assert command.evaluate("el => el.validity.valueMissing") is True
    page.wait_for_timeout(300)
    assert Operation.objects.filter(kind="container.attach").count() == before

    # The form's own example works in a busybox container.
    assert command.get_attribute("placeholder") == "uname -a"
    command.fill("uname -a")
    run.click()
    card = page.locator(
        "#action-result section.operation[data-status=succeeded]", has_text="container.attach"
    )
    card.wait_for(timeout=30000)
    assert "Linux" in card.inner_text() and "exited with status 0" in card.inner_text()

    # A command that exits non-zero: its status, plainly.
    command.fill("sh -c 'exit 3'")
    run.click()
    card = page.locator("#action-result section.operation[data-status=failed]", has_text="container.attach")
    card.wait_for(timeout=30000)
    assert card.locator("[data-exit-status='3']").count() == 1
    assert "Failed:" not in card.inner_text()
    # The panel refreshed when the operation ended; the command is still there to edit and rerun.
    page.wait_for_timeout(1000)
    assert command.input_value() == "sh -c 'exit 3'"
    page.screenshot(path=str(SHOTS / "browser-attach-exit-status.png"), full_page=True)

    # A wrong value: refused with the reason; what was typed stays.
    command.fill("echo 'unbalanced")
    run.click()
    page.locator("#action-result .alert.error").wait_for(timeout=10000)
    assert "cannot be split" in page.inner_text("#action-result")
    assert command.input_value() == "echo 'unbalanced"
    page.locator("h1").click()  # the user looks elsewhere while the panel refreshes (every 2 s)
    page.wait_for_timeout(2500)
    assert command.input_value() == "echo 'unbalanced"

    # Typing across the page's live refresh of the panel keeps every character.
    command.fill("")
    command.press_sequentially("echo typed slowly across a refresh", delay=120)
    assert command.input_value() == "echo typed slowly across a refresh"
