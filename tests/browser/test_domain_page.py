"""A libvirt domain's page, clicked through on a real lxc:/// domain: it links to every action the
user's role allows in the domain's state (the console included), its block-device panel shows an
attach and a detach when they end, without reload, and after Undefine the page says so once, with
a link to the list, and no polling partial ever inserts a whole page."""

from __future__ import annotations

import re
import subprocess
import uuid

import pytest

from console.models import Host, Operation
from console.operations import RequestContext
from containers.choices import Backend
from containers.libvirt import services as domains
from containers.models import Container
from storage.models import HostStorage
from tests.browser.helpers import PASSWORD, SHOTS, busybox, login, virsh
from tests.host.helpers import wait_terminal
from tests.hosttools import require_root, require_tool, wait_for

pytestmark = [pytest.mark.host, pytest.mark.browser]
CTX = RequestContext(ip="127.0.0.1", request_id="browser-domain-test")
PREFIX = "ctlv"  # tests/libvirt's prefix: whatever a failed run leaves is recognisable


@pytest.fixture
def domain_name():
    require_root()
    require_tool("virsh", "losetup", "truncate")
    if virsh("uri").returncode != 0:
        pytest.fail("libvirtd is not reachable at lxc:/// (scripts/prepare-host starts it)")
    name = f"{PREFIX}{uuid.uuid4().hex[:6]}"
    yield name
    virsh("destroy", name)
    virsh("undefine", name)


@pytest.fixture
def loop_device(tmp_path):
    """A loop device to attach, and a spare one that stays free: with no free device left the page
    says so instead of offering the attach form, and the expected actions would hang on whatever
    other free devices the host happens to have."""
    devices = []
    for name in ("disk.img", "spare.img"):
        image = tmp_path / name
        subprocess.run(["truncate", "-s", "16M", str(image)], check=True)
        devices.append(
            subprocess.run(
                ["losetup", "--find", "--show", str(image)], capture_output=True, text=True, check=True
            ).stdout.strip()
        )
    yield devices[0]
    for device in devices:
        subprocess.run(["losetup", "-d", device], capture_output=True, timeout=30)


def _actions(page) -> set[str]:
    """What the page offers: the domain's action forms (by their URL's last word) and its links."""
    found = set()
    for url in page.eval_on_selector_all("form[action]", "els => els.map(e => e.getAttribute('action'))"):
        m = re.search(r"/domain/([a-z-]+)/$", url)
        if m:
            found.add(m.group(1))
    for url in page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))"):
        m = re.search(r"/containers/\d+/(terminal|domain-xml)/$", url)
        if m:
            found.add(m.group(1))
    return found


def _targets(page) -> list[str]:
    return page.eval_on_selector_all("select[name=target] option", "os => os.map(o => o.value)")


def _devices(page) -> list[str]:
    return page.eval_on_selector_all("select[name=device] option", "os => os.map(o => o.value)")


def _allowed(role: str, state: str, has_disk: bool) -> set[str]:
    """Every action the services accept from ``role`` in ``state``: the page must offer each."""
    rank = ("view", "operate", "admin").index
    out = {
        action
        for action, (_kind, need, states, _msg) in domains.ACTIONS.items()
        if rank(role) >= rank(need) and (states is None or state in states)
    }
    if rank(role) >= rank("operate") and state == "RUNNING":
        out.add("terminal")  # the terminal service needs a running domain
    if role == "admin":
        out.add("domain-xml")  # the editor page; saving needs a stopped domain, it says so
        if state == "RUNNING":
            out.add("attach-disk")
        if has_disk and state in ("RUNNING", "FROZEN"):
            out.add("detach-disk")
    return out


def _polling_partials(page) -> list[tuple[str, str]]:
    """(URL with its hx-vals, element id) of every element that refreshes itself."""
    return page.eval_on_selector_all(
        "[hx-get][hx-trigger]",
        """els => els.map(e => {
            const url = new URL(e.getAttribute('hx-get'), location.href);
            const vals = JSON.parse(e.getAttribute('hx-vals') || '{}');
            for (const [k, v] of Object.entries(vals)) url.searchParams.set(k, v);
            return [url.toString(), e.id];
        })""",
    )


def _walk_partials(page, partials) -> list[tuple[int, str]]:
    """Ask every polled partial as htmx does; returns (status, body) of each."""
    out = []
    for url, target in partials:
        response = page.request.get(
            url, headers={"HX-Request": "true", "HX-Target": target, "HX-Trigger": target}
        )
        out.append((response.status, response.text()))
    return out


def test_domain_page_actions_block_devices_and_undefine(
    page, browser, web, make_user, start_agent, domain_name, loop_device
):
    admin = make_user("dom-admin", role="admin", password=PASSWORD)
    make_user("dom-operator", role="operate", password=PASSWORD)
    make_user("dom-viewer", role="view", password=PASSWORD)
    agent = start_agent()
    host = Host.objects.get(slug=agent.slug)
    rootfs = busybox(agent.lxc_path, f"{domain_name}-fs")
    op = wait_terminal(
        domains.define_domain(
            actor=admin,
            ctx=CTX,
            host=host,
            name=domain_name,
            memory_mib=64,
            vcpus=1,
            init="/bin/sh",
            rootfs=rootfs,
            bridge="lxcbr0",
        ),  # fmt: skip
        60,
    )
    assert op.status == "succeeded", op.error
    dom = Container.objects.get(host=host, backend=Backend.LIBVIRT, name=domain_name)
    base = f"http://{web}"
    url = f"{base}/containers/{dom.pk}/"

    def role_pages(state: str, has_disk: bool) -> None:
        for role in ("operator", "viewer"):
            context = browser.new_context()
            other = context.new_page()
            login(other, base, f"dom-{role}")
            other.goto(url)
            short = {"operator": "operate", "viewer": "view"}[role]
            assert _actions(other) == _allowed(short, state, has_disk), (role, state)
            context.close()

    login(page, base, "dom-admin")
    page.goto(url)
    state = page.locator("#container-state dd.state")
    assert state.inner_text() == "STOPPED"
    assert _actions(page) == _allowed("admin", "STOPPED", False)
    role_pages("STOPPED", False)

    page.click("button:has-text('Start')")
    state.filter(has_text="RUNNING").wait_for(timeout=60000)
    assert virsh("domstate", domain_name).stdout.strip() == "running"
    wait_for(lambda: _actions(page) == _allowed("admin", "RUNNING", False), 10, what="running actions")
    role_pages("RUNNING", False)

    # The console, reached by a click, answers in the browser.
    page.get_by_role("link", name="Console", exact=True).click()
    page.wait_for_url(f"**/containers/{dom.pk}/terminal/")
    page.locator("#terminal .xterm").wait_for(timeout=15000)
    page.locator("#terminal-status", has_text="onnected").wait_for(timeout=20000)
    for _ in range(10):
        page.click("#terminal")
        page.keyboard.type("echo console-$((6*7))\n")
        try:
            page.locator("#terminal .xterm-rows", has_text="console-42").wait_for(timeout=2000)
            break
        except Exception:  # the console may need a moment and an Enter to wake up
            continue
    assert "console-42" in page.inner_text("#terminal .xterm-rows")
    page.goto(url)

    # Attach: the device is picked from the host's free ones (the inventory has read the new loop
    # device by now); the block-device panel and both lists change when the operation ends.
    wait_for(
        lambda: any(
            d["path"] == loop_device for d in HostStorage.objects.get(host=host).free_block_devices()
        ),
        30,
        what="the loop device in the storage inventory",
    )
    page.goto(url)
    disks = page.locator("#domain-disks")
    assert "No block devices attached" in disks.inner_text()
    assert loop_device in _devices(page)
    page.select_option("select[name=device]", loop_device)
    page.select_option("select[name=target]", "vdb")
    page.click("button:has-text('Attach (live)')")
    disks.locator("tr[data-target='vdb']").wait_for(timeout=60000)
    assert loop_device in disks.inner_text()
    assert loop_device in virsh("dumpxml", domain_name).stdout
    wait_for(lambda: "vdb" not in _targets(page), 10, what="vdb no longer offered")
    assert loop_device not in _devices(page)  # attached: no longer free
    assert _actions(page) == _allowed("admin", "RUNNING", True)
    role_pages("RUNNING", True)
    page.screenshot(path=str(SHOTS / "browser-domain-attached.png"), full_page=True)

    # Detach: the row goes, the name is offered again.
    disks.locator("tr[data-target='vdb'] button:has-text('Detach')").click()
    disks.locator("text=No block devices attached").wait_for(timeout=60000)
    assert loop_device not in virsh("dumpxml", domain_name).stdout
    wait_for(lambda: "vdb" in _targets(page), 10, what="vdb offered again")
    wait_for(lambda: loop_device in _devices(page), 10, what="the device offered again")

    page.on("dialog", lambda dialog: dialog.accept())
    page.click("button:has-text('Suspend')")
    state.filter(has_text="FROZEN").wait_for(timeout=60000)
    wait_for(lambda: _actions(page) == _allowed("admin", "FROZEN", False), 10, what="frozen actions")
    page.click("button:has-text('Destroy (force off)')")
    state.filter(has_text="STOPPED").wait_for(timeout=60000)
    wait_for(lambda: _actions(page) == _allowed("admin", "STOPPED", False), 10, what="stopped actions")

    # Undefine while the page is open: one clear notice, no page inside the page.
    partials = _polling_partials(page)
    assert {target for _, target in partials} >= {"container-state"}
    bodies: list[str] = []
    page.on("response", lambda r: bodies.append(r.text()) if r.request.headers.get("hx-request") else None)
    page.click("button:has-text('Undefine')")
    notice = page.locator("#container-state .gone")
    notice.wait_for(timeout=60000)
    assert f"{domain_name} was undefined" in notice.inner_text()
    assert notice.locator("a", has_text="containers").get_attribute("href") == "/containers/"
    page.wait_for_timeout(4500)  # two more rounds of the 2 s poll, had it not stopped
    page.screenshot(path=str(SHOTS / "browser-domain-undefined.png"), full_page=True)
    assert page.locator("header.topbar").count() == 1
    assert page.locator("#container-state .gone").count() == 1
    assert not any("<html" in body for body in bodies)
    assert virsh("dominfo", domain_name).returncode != 0
    undefine = Operation.objects.get(kind="libvirt.domain.undefine")
    assert f"#{undefine.pk}" in page.inner_text("#container-ops")
    for status, body in _walk_partials(page, partials):
        assert "<html" not in body, body[:300]
        assert status == 286, status  # htmx stops polling a vanished object
