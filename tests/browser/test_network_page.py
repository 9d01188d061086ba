"""A libvirt network's page, clicked: Start and Stop answer a live card on the page and the state
shown follows when the operation ends (no reload, no leaving the page); Stop and Undefine ask
first; Undefine leads to its operation, whose page says the network no longer exists."""

from __future__ import annotations

import uuid

import pytest

from console.models import Host, Operation
from console.operations import RequestContext
from networks import services as nets
from networks.models import Network
from tests.browser.helpers import PASSWORD, SHOTS, login, virsh
from tests.host.helpers import wait_terminal
from tests.hosttools import require_tool, wait_for

pytestmark = [pytest.mark.host, pytest.mark.browser]


@pytest.fixture
def net_name():
    name = f"brnet{uuid.uuid4().hex[:6]}"
    yield name
    virsh("net-destroy", name)
    virsh("net-undefine", name)


def test_network_page_start_stop_undefine(page, live_server, make_user, start_agent, net_name):
    require_tool("virsh")
    make_user("net-admin", role="admin", password=PASSWORD)
    agent = start_agent()
    host = Host.objects.get(slug=agent.slug)
    wait_for(lambda: Host.objects.get(pk=host.pk).last_inventory_sync, 20, what="first sync")
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(username="net-admin")
    op = wait_terminal(
        nets.define_network(
            actor=user,
            ctx=RequestContext(),
            host=host,
            name=net_name,
            bridge=f"b{net_name[-8:]}",
            forward_mode="none",
            address="192.168.247.1",
            netmask="255.255.255.0",
        )
    )
    assert op.status == "succeeded", op.error + op.log
    network = Network.objects.get(host=host, name=net_name)
    login(page, live_server.url, "net-admin")
    url = f"{live_server.url}/networks/{network.pk}/"
    page.goto(url)
    badge = page.locator("#network-state h1 .badge")
    assert "{#" not in page.inner_text("main")
    assert badge.inner_text() == "inactive"

    page.get_by_role("button", name="Start", exact=True).click()
    page.locator("#network-action-result section.operation[data-status=succeeded]").wait_for(timeout=30000)
    wait_for(lambda: badge.inner_text() == "active", 10, what="the page to show the network active")
    assert page.url == url
    assert "yes" in virsh("net-info", net_name).stdout.split("Active:")[1].splitlines()[0]

    # Stop asks first: dismissed, nothing happens.
    page.once("dialog", lambda d: d.dismiss())
    page.get_by_role("button", name="Stop (net-destroy)").click()
    page.wait_for_timeout(500)
    assert badge.inner_text() == "active"
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Stop (net-destroy)").click()
    wait_for(lambda: badge.inner_text() == "inactive", 30, what="the page to show the network inactive")
    page.screenshot(path=str(SHOTS / "browser-network-page.png"), full_page=True)

    # Undefine asks, then leads to its operation, which says the network is gone.
    page.once("dialog", lambda d: d.accept())
    with page.expect_navigation():
        page.get_by_role("button", name="Undefine").click()
    op = Operation.objects.filter(kind="libvirt.network.undefine").latest("pk")
    assert page.url.endswith(f"/operations/{op.pk}/")
    wait_terminal(op)
    page.reload()
    assert f"network {net_name} (no longer exists)" in page.inner_text("[data-subject]")
    assert virsh("net-info", net_name).returncode != 0
