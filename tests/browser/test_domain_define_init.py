"""The define form does not lead to a console without a prompt: its init is /bin/sh unless
changed, its help says what /sbin/init does on a busybox root filesystem, and a domain defined
with busybox's /sbin/init anyway gets a note, read from the rootfs by the agent, on its operation."""

from __future__ import annotations

import uuid

import pytest

from console.models import Host, Operation
from tests.browser.helpers import PASSWORD, busybox, login, virsh
from tests.host.helpers import wait_terminal
from tests.hosttools import require_root, require_tool

pytestmark = [pytest.mark.host, pytest.mark.browser]
PREFIX = "ctlv"  # tests/libvirt's prefix: whatever a failed run leaves is recognisable


@pytest.fixture
def domain_name():
    require_root()
    require_tool("virsh")
    if virsh("uri").returncode != 0:
        pytest.fail("libvirtd is not reachable at lxc:/// (scripts/prepare-host starts it)")
    name = f"{PREFIX}{uuid.uuid4().hex[:6]}"
    yield name
    virsh("destroy", name)
    virsh("undefine", name)


def test_define_form_suggests_an_init_that_gives_a_prompt(
    page, live_server, make_user, local_agent, domain_name
):
    make_user("init-admin", role="admin", password=PASSWORD)
    host = Host.objects.get(slug=local_agent.slug)
    rootfs = busybox(local_agent.lxc_path, f"{domain_name}-fs")
    login(page, live_server.url, "init-admin")
    page.goto(f"{live_server.url}/containers/libvirt/new/")
    init = page.get_by_label("Init")
    assert init.input_value() == "/bin/sh"
    assert "udhcpc waits for a DHCP lease" in page.inner_text("main form")

    page.select_option("select[name=host]", host.slug)
    page.fill("input[name=name]", domain_name)
    page.fill("input[name=rootfs]", rootfs)
    init.fill("/sbin/init")
    page.get_by_role("button", name="Define", exact=True).click()
    page.wait_for_url("**/operations/*/")
    op = wait_terminal(Operation.objects.get(kind="libvirt.domain.define"))
    assert op.status == "succeeded", op.error + op.log
    note = page.locator("[data-note]")
    note.wait_for(timeout=15000)
    assert "'/bin/udhcpc' waits in the foreground for a DHCP lease" in note.inner_text()
    assert "<init>/sbin/init</init>" in virsh("dumpxml", domain_name).stdout
