"""A native container's page offers every action the user's role allows in the container's state,
and only those (the services refuse the rest): checked for admin, operator and viewer while a real
busybox container goes STOPPED -> RUNNING -> FROZEN -> RUNNING -> STOPPED by clicks, with the
copy and command forms following the state when each operation ends, without reload."""

from __future__ import annotations

import re
import uuid

import pytest

from console.models import Host
from containers.models import Container
from tests.browser.helpers import PASSWORD, busybox, login
from tests.hosttools import wait_for

pytestmark = [pytest.mark.host, pytest.mark.browser]
ALWAYS = {"config", "limits", "hooks", "mounts"}  # pages every role may read


def _actions(page) -> set[str]:
    found = set()
    forms = page.eval_on_selector_all(
        "form[action]",
        "els => els.map(e => [e.getAttribute('action'), !!e.querySelector('input[name=force]')])",
    )
    for url, force in forms:
        m = re.search(r"/containers/\d+/([a-z-]+)/$", url)
        if m:
            found.add("kill" if force else m.group(1))
    for url in page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))"):
        m = re.search(r"/containers/\d+/([a-z-]+)/$", url)
        if m:
            found.add(m.group(1))
    return found


def _allowed(role: str, state: str) -> set[str]:
    """What containers.services accepts from ``role`` in ``state``."""
    out = set(ALWAYS)
    if role in ("operate", "admin"):
        out |= {
            "STOPPED": {"start", "copy"},
            "RUNNING": {"stop", "kill", "restart", "freeze", "attach", "files", "terminal"},
            "FROZEN": {"unfreeze", "stop", "kill", "files"},
        }[state]
    if role == "admin":
        out |= {"destroy", "convert"}
    return out


def test_container_page_offers_what_each_role_may_do(browser, page, live_server, make_user, start_agent):
    make_user("page-admin", role="admin", password=PASSWORD)
    make_user("page-operator", role="operate", password=PASSWORD)
    make_user("page-viewer", role="view", password=PASSWORD)
    agent = start_agent()
    host = Host.objects.get(slug=agent.slug)
    name = f"acts-{uuid.uuid4().hex[:6]}"
    busybox(agent.lxc_path, name)
    container = wait_for(
        lambda: Container.objects.filter(host=host, name=name).exclude(config_text="").first(),
        20,
        what="the container in the inventory",
    )
    url = f"{live_server.url}/containers/{container.pk}/"

    def others(state: str) -> None:
        for user, role in (("page-operator", "operate"), ("page-viewer", "view")):
            context = browser.new_context()
            other = context.new_page()
            login(other, live_server.url, user)
            other.goto(url)
            assert _actions(other) == _allowed(role, state), (role, state)
            context.close()

    login(page, live_server.url, "page-admin")
    page.goto(url)
    page.on("dialog", lambda dialog: dialog.accept())
    state = page.locator("#container-state dd.state")

    def reach(button: str, wanted: str) -> None:
        page.locator("#container-state").get_by_role("button", name=button, exact=True).click()
        state.filter(has_text=wanted).wait_for(timeout=60000)
        wait_for(lambda: _actions(page) == _allowed("admin", wanted), 15, what=f"the {wanted} actions")

    assert _actions(page) == _allowed("admin", "STOPPED")
    others("STOPPED")
    reach("Start", "RUNNING")
    others("RUNNING")
    reach("Freeze", "FROZEN")
    others("FROZEN")
    reach("Unfreeze", "RUNNING")
    reach("Stop", "STOPPED")
