"""The seed chapter walked through the pages by clicks only, as a sysadmin who knows the chapter
would (issue 11): every step checks what the page shows and what the host shows (``lxc-info``,
``lxc-ls``, ``losetup``, ``btrfs subvolume show``, ``lxc-autostart --list``, ``lxc-cgroup``,
``virsh dumpxml``), and no live panel ever receives a whole page. The walk runs in a world of its
own (tests/browser/world.py: its LXC path, images, pools, libvirt names) taken apart at the end,
also when a step fails; the steps' timings are printed and kept in var/test-logs/walk-times.txt.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import time

import pytest

from console.models import Operation
from containers.choices import Backend
from containers.models import Container
from storage.models import Pool
from tests.browser.helpers import SHOTS, virsh
from tests.browser.world import login_as
from tests.hosttools import wait_for

pytestmark = [pytest.mark.host, pytest.mark.browser, pytest.mark.slow]
TERMINAL = ("succeeded", "failed", "cancelled")


def sh(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=120)


class Walk:
    """The walker's page, what its live panels received, and the time each step took."""

    def __init__(self, page, world) -> None:
        self.page = page
        self.world = world
        self.times: list[tuple[str, float]] = []
        self.partials: list[tuple[str, int, bool]] = []  # (URL, status, whether it held <html)
        self.checked = 0  # times every live panel was found fresh after an operation
        page.on("dialog", lambda dialog: dialog.accept())
        page.on("response", self._response)

    def _response(self, response) -> None:
        request = response.request
        if not request.headers.get("hx-request") or "/events/" in response.url:
            return
        try:
            body = response.text()
        except Exception:  # a redirect or a navigated-away request has no body to read
            return
        self.partials.append((response.url, response.status, "<html" in body.lower()))

    def fresh(self, timeout: float = 10) -> None:
        """Every live panel of the page (an element that reads itself with hx-get: on an event, an
        operation's end or a timer), and every part its read answers out of band, shows what the
        server renders for it now: its words, numbers
        left out (usage, times and PIDs move on their own), equal to a fresh request made the way
        htmx makes it. Called once an operation is terminal: a panel still showing the old state
        (or one missing a row the operation made) fails the walk."""
        script = """async () => {
            const words = t => (t || '').replace(/[0-9]+/g, '').replace(/\\s+/g, ' ').trim();
            const out = [];
            for (const el of document.querySelectorAll('div[hx-get][id], section[hx-get][id]')) {
                if (el.classList.contains('operation')) continue;  // cards: checked by status
                const url = new URL(el.getAttribute('hx-get'), location.href);
                const vals = JSON.parse(el.getAttribute('hx-vals') || '{}');
                for (const [k, v] of Object.entries(vals)) url.searchParams.set(k, v);
                const r = await fetch(url, {headers: {'HX-Request': 'true', 'HX-Target': el.id,
                                                      'HX-Trigger': el.id}});
                const body = await r.text();
                const t = document.createElement('template');
                t.innerHTML = body;
                // Parts answered out of band (the state panel's read brings the operations and
                // the clone graph): each must equal the element of its id on the page.
                for (const oob of t.content.querySelectorAll('[hx-swap-oob]')) {
                    oob.remove();
                    const shown = document.getElementById(oob.id);
                    if (!shown || words(shown.textContent) !== words(oob.textContent))
                        out.push([oob.id, words(shown && shown.textContent), words(oob.textContent)]);
                }
                const outer = (el.getAttribute('hx-swap') || '').startsWith('outerHTML');
                const served = outer && t.content.firstElementChild ? t.content.firstElementChild : t.content;
                if (words(served.textContent) !== words(el.textContent))
                    out.push([el.id, words(el.textContent), words(served.textContent)]);
            }
            return out;
        }"""
        stale: list = []

        def agree():
            nonlocal stale
            stale = self.page.evaluate(script)
            return not stale

        try:
            wait_for(agree, timeout, interval=0.5, what="the live panels")
        except AssertionError:
            details = "\n".join(f"#{i}:\n  shows: {a[:600]}\n  now:   {b[:600]}" for i, a, b in stale)
            raise AssertionError(f"stale panels on {self.page.url}:\n{details}") from None
        self.checked += 1

    @contextlib.contextmanager
    def step(self, name: str):
        started = time.monotonic()
        yield
        self.times.append((name, time.monotonic() - started))

    # -- what the page shows ---------------------------------------------------------------
    def nav(self, label: str) -> None:
        self.page.locator("header.topbar nav").get_by_role("link", name=label, exact=True).click()
        self.page.wait_for_load_state()

    def link(self, name: str, scope: str = "main") -> None:
        self.page.locator(scope).get_by_role("link", name=name).first.click()
        self.page.wait_for_load_state()

    def button(self, name: str, scope: str = "main") -> None:
        self.page.locator(scope).get_by_role("button", name=name, exact=True).first.click()

    def operation_page(self, timeout: float = 180) -> Operation:
        """After a plain form: its operation's page, until the operation ends; it must succeed."""
        self.page.wait_for_url("**/operations/*/", timeout=30000)
        shown = time.time()
        card = self.page.locator("section.operation").first
        wait_for(lambda: card.get_attribute("data-status") in TERMINAL, timeout, what="the operation")
        found = re.search(r"/operations/(\d+)/", self.page.url)
        assert found, self.page.url
        pk = int(found.group(1))
        op = Operation.objects.get(pk=pk)
        if time.time() - shown > 3:
            print(
                f"SLOW #{pk} {op.kind}: page {shown:.2f} created {op.created_at.timestamp():.2f} "
                f"started {op.started_at and op.started_at.timestamp():.2f} finished "
                f"{op.finished_at and op.finished_at.timestamp():.2f} seen {time.time():.2f}"
            )
        assert card.get_attribute("data-status") == "succeeded", f"{op.kind}: {op.error}\n{op.log[-2000:]}"
        self.fresh()
        return op

    def card(self, click, scope: str = "#action-result", timeout: float = 180) -> Operation:
        """A live button: its operation's card appears in ``scope`` and ends there, succeeded."""
        cards = f"{scope} section.operation"
        before = set(self.page.eval_on_selector_all(cards, "els => els.map(e => e.id)"))
        click()

        def ended():
            for card_id, status in self.page.eval_on_selector_all(
                cards, "els => els.map(e => [e.id, e.dataset.status])"
            ):
                if card_id not in before and status in TERMINAL:
                    return card_id, status
            return None

        clicked = time.time()
        card_id, status = wait_for(ended, timeout, interval=0.2, what=f"an operation card in {scope}")
        op = Operation.objects.get(pk=int(card_id.removeprefix("operation-")))
        if time.time() - clicked > 3:
            print(
                f"SLOW #{op.pk} {op.kind}: click {clicked:.2f} created {op.created_at.timestamp():.2f} "
                f"started {op.started_at and op.started_at.timestamp():.2f} finished "
                f"{op.finished_at and op.finished_at.timestamp():.2f} seen {time.time():.2f}"
            )
        assert status == "succeeded", f"{op.kind}: {op.error}\n{op.log[-2000:]}"
        self.fresh()
        return op

    def state(self, wanted: str, timeout: float = 60) -> None:
        self.page.locator("#container-state dd.state").filter(has_text=re.compile(f"^{wanted}$")).wait_for(
            timeout=timeout * 1000
        )

    def main(self) -> str:
        return self.page.inner_text("main")

    def open_container(self, name: str) -> None:
        self.nav("Containers")
        self.page.locator(f"tr[data-name='{name}']").get_by_role("link", name=name, exact=True).click()
        self.page.wait_for_url("**/containers/*/")


# -- what the host shows -----------------------------------------------------------------------
def lxc_state(path: str, name: str) -> str:
    return sh("lxc-info", "-P", path, "-n", name, "-s", "-H").stdout.strip()


def lxc_names(path: str) -> list[str]:
    return sh("lxc-ls", "-P", path, "-1").stdout.split()


def lxc_value(path: str, name: str, key: str) -> str:
    return sh("lxc-info", "-P", path, "-n", name, "-c", key).stdout.partition("=")[2].strip()


def loop_of(backing_file: str) -> str:
    devices = json.loads(sh("losetup", "--list", "--json").stdout or "{}").get("loopdevices", [])
    return next((d["name"] for d in devices if d.get("back-file") == backing_file), "")


def subvolume(path: str) -> dict[str, str]:
    """``btrfs subvolume show PATH`` as its key: value lines (empty if PATH is no subvolume)."""
    out = sh("btrfs", "subvolume", "show", path)
    if out.returncode != 0:
        return {}
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.stdout.splitlines()[1:])}


def test_seed_chapter_by_clicks(browser, world):
    page = login_as(world, browser, "admin")
    walk = Walk(page, world)
    P = world.lxc_path
    c1, snap, copy = world.name("c1"), world.name("c1-snap"), world.name("c1-copy")
    pool_name, bc, bsnap = world.name("pool"), world.name("b1"), world.name("b1-snap")
    net, bridge = world.name("net"), f"br{world.prefix}"
    dom, conv = world.name("dom"), world.name("conv")
    shared = world.root / "shared"
    (shared / "marker").write_text("shared-from-the-host\n")
    started = time.monotonic()
    try:
        # 1. Create a busybox container (lxc-create -t busybox).
        with walk.step("create"):
            walk.nav("Containers")
            walk.link("New container")
            page.fill("input[name=name]", c1)
            assert page.locator("select[name=template]").input_value() == "busybox"
            walk.button("Create")
            walk.operation_page()
            walk.link("Open the container")
            walk.state("STOPPED")
            assert lxc_state(P, c1) == "STOPPED"
            assert P in walk.main()

        # 2-4. Start, freeze, unfreeze (lxc-start, lxc-freeze, lxc-unfreeze).
        for button, wanted in (("Start", "RUNNING"), ("Freeze", "FROZEN"), ("Unfreeze", "RUNNING")):
            with walk.step(button.lower()):
                walk.card(lambda b=button: walk.button(b, "#container-state"))
                walk.state(wanted)
                assert lxc_state(P, c1) == wanted
        pid = sh("lxc-info", "-P", P, "-n", c1, "-p", "-H").stdout.strip()
        wait_for(lambda: page.inner_text("#container-state dd.pid") == pid, 20, what="the PID shown")

        # 5. A snapshot and a full copy (lxc-copy -s / lxc-copy), made from the stopped container.
        with walk.step("stop"):
            walk.card(lambda: walk.button("Stop", "#container-state"))
            walk.state("STOPPED")
            assert lxc_state(P, c1) == "STOPPED"
        with walk.step("snapshot"):
            page.locator("#container-forms input[name=new_name]").wait_for()
            page.fill("#container-forms input[name=new_name]", snap)
            walk.card(lambda: walk.button("Copy", "#container-forms"))
            assert "overlay" in lxc_value(P, snap, "lxc.rootfs.path")
        with walk.step("full copy"):
            page.fill("#container-forms input[name=new_name]", copy)
            page.uncheck("#container-forms input[name=snapshot]")
            walk.card(lambda: walk.button("Copy", "#container-forms"))
            assert lxc_value(P, copy, "lxc.rootfs.path").removeprefix("dir:") == f"{P}/{copy}/rootfs"
            assert (world.root / "lxc" / copy / "rootfs" / "bin" / "busybox").exists()
            assert sorted(lxc_names(P)) == sorted([c1, snap, copy])

        # 6. The clone graph shows both, without a reload.
        with walk.step("clone graph"):
            graph = page.locator("section.tree")
            for name in (snap, copy):
                graph.get_by_role("link", name=name, exact=True).wait_for(timeout=15000)
            text = graph.inner_text()
            assert f"{snap} snapshot" in text and f"{copy} copy" in text, text

        # 7. Destroying the origin of a snapshot is not offered: the button is disabled and says why.
        with walk.step("refused destroy"):
            blocked = page.locator("#container-state button:disabled", has_text="Destroy…")
            blocked.wait_for(timeout=15000)
            assert snap in blocked.get_attribute("title")
            assert snap in page.inner_text("#destroy-blocked")
            assert page.locator("#container-state a", has_text="Destroy…").count() == 0
            assert lxc_state(P, c1) == "STOPPED"
            assert not Operation.objects.filter(kind="container.destroy").exists()

        # 8. A loop device (truncate + losetup --find --show).
        image = f"{world.root}/images/{world.name('disk1')}.img"
        with walk.step("loop device"):
            walk.nav("Storage")
            walk.link("New loop device")
            page.fill("input[name=name]", world.name("disk1"))
            page.fill("input[name=size]", "512M")
            walk.button("Create and attach")
            op = walk.operation_page()
            loop1 = op.result["device"]
            assert loop_of(image) == loop1
            walk.nav("Storage")
            row = page.locator("tr", has=page.locator(f"code:text-is('{loop1}')"))
            assert "nothing (blank)" in row.inner_text()

        # 9. A btrfs pool on it (mkfs.btrfs, mount).
        with walk.step("btrfs pool"):
            row.get_by_role("link", name="Make a pool…").click()
            assert page.input_value("[name=device]") == loop1
            page.fill("input[name=name]", pool_name)
            assert page.locator("select[name=kind]").input_value() == "btrfs"
            walk.button("Create")
            walk.operation_page()
            pool = Pool.objects.get(name=pool_name)
            mounted = sh("findmnt", "-n", "-o", "SOURCE,FSTYPE", pool.lxc_path).stdout.split()
            assert mounted == [loop1, "btrfs"], mounted
            walk.nav("Storage")
            walk.link(pool_name)

        # 10. A container on that pool (lxc-create -B btrfs), from the pool's page.
        with walk.step("container on the pool"):
            walk.link("new container on this pool")
            assert page.locator("select[name=lxc_path]").input_value() == pool.lxc_path
            page.fill("input[name=name]", bc)
            walk.button("Create")
            walk.operation_page()
            origin = subvolume(f"{pool.lxc_path}/{bc}/rootfs")
            assert origin.get("UUID"), f"{bc}'s rootfs is no btrfs subvolume"
            walk.link("Open the container")
            assert pool_name in page.inner_text("#container-state")

        # 11. A snapshot there: a subvolume snapshot of the origin (btrfs subvolume show).
        with walk.step("btrfs snapshot"):
            page.fill("#container-forms input[name=new_name]", bsnap)
            walk.card(lambda: walk.button("Copy", "#container-forms"))
            made = subvolume(f"{pool.lxc_path}/{bsnap}/rootfs")
            assert made.get("Parent UUID") == origin["UUID"], made
            walk.link(pool_name, "#container-state")
            subvolumes = page.locator("section:has(h2:has-text('Subvolumes'))").inner_text()
            assert f"{bsnap}/rootfs" in subvolumes and f"{bc}/rootfs" in subvolumes, subvolumes

        # 12. Settings: start at boot, a group, an order (lxc-autostart --list).
        with walk.step("settings"):
            walk.open_container(c1)
            walk.link("Configuration")
            form = page.locator("form:has(input[name=mode][value=keys])")
            form.locator("input[name='lxc.start.auto'][type=checkbox]").check()
            form.locator("input[name='lxc.group']").fill("web")
            form.locator("input[name='lxc.start.order']").fill("5")
            form.get_by_role("button", name="Save settings").click()
            walk.operation_page()
            out = sh("lxc-autostart", "-P", P, "--list", "--groups", "web").stdout
            listed = [line.split()[0] for line in out.splitlines() if line.strip()]
            assert listed == [c1], listed
            assert lxc_value(P, c1, "lxc.start.order") == "5"
            walk.link(c1, "p.crumbs")
            assert "yes" in page.inner_text("#container-state dt:text-is('Autostart') + dd")

        # 13. A hook (lxc.hook.pre-start), run at the next start.
        with walk.step("hook"):
            walk.link("Hooks")
            page.locator("tr[data-hook='pre-start']").get_by_role("link").click()
            page.fill("textarea[name=script]", '#!/bin/sh\necho "pre-start hook of $LXC_NAME ran"\n')
            walk.button("Save hook")
            walk.operation_page()
            hook = lxc_value(P, c1, "lxc.hook.pre-start")
            assert hook and sh("test", "-x", hook).returncode == 0, hook

        # 14. A bind mount of an allowed host directory (lxc.mount.entry).
        with walk.step("bind mount"):
            walk.nav("Hosts")
            walk.link(world.host.slug)
            page.fill("textarea[name=roots]", str(shared))
            walk.card(lambda: walk.button("Save roots"), "#mount-roots-result")
            assert str(shared) in page.input_value("textarea[name=roots]")
            walk.open_container(c1)
            walk.link("Mounts")
            page.fill("input[name=source]", str(shared))
            page.fill("input[name=target]", "mnt/shared")
            walk.button("Add mount")
            walk.operation_page()
            assert f"{shared} mnt/shared" in lxc_value(P, c1, "lxc.mount.entry")

        # 15. Start it: the hook runs, the mount is there; then a memory limit (lxc-cgroup).
        with walk.step("start with hook and mount"):
            walk.open_container(c1)
            op = walk.card(lambda: walk.button("Start", "#container-state"))
            walk.state("RUNNING")
            assert f"pre-start hook of {c1} ran" in op.log, op.log
            seen = sh("lxc-attach", "-P", P, "-n", c1, "--", "cat", "/mnt/shared/marker").stdout
            assert seen == "shared-from-the-host\n", seen
        with walk.step("limits"):
            walk.link("Limits")
            page.select_option("select[name=key]", "memory.limit_in_bytes")
            page.fill("input[name=value]", "256M")
            walk.button("Set")
            walk.operation_page()
            live = sh("lxc-cgroup", "-P", P, "-n", c1, "memory.limit_in_bytes").stdout.strip()
            assert live == str(256 * 1024 * 1024), live
            assert lxc_value(P, c1, "lxc.cgroup.memory.limit_in_bytes") == live
            walk.open_container(c1)
            walk.link("Limits")
            row = page.locator("tr[data-key='memory.limit_in_bytes']")
            wait_for(lambda: row.locator("td.live").inner_text() != "—", 30, what="the live limit")
            assert "differs" not in row.inner_text()

        # 16. The autostart page lists it in lxc-autostart's order, in its group.
        with walk.step("autostart page"):
            walk.nav("Hosts")
            walk.link(world.host.slug)
            walk.link("Autostart order")
            page.select_option("select[name=group]", "web")
            walk.button("Show")
            page.wait_for_load_state()
            rows = page.locator("table.autostart tbody tr").all()
            assert [r.get_attribute("data-name") for r in rows] == [c1]
            assert rows[0].locator("td").nth(4).inner_text() == "5"

        # 17. A libvirt network (virsh net-define, net-start).
        third = int(world.prefix[1:3], 16)
        with walk.step("network"):
            walk.nav("Networks")
            walk.link("New network")
            page.fill("input[name=name]", net)
            page.fill("input[name=bridge]", bridge)
            page.fill("input[name=address]", f"10.213.{third}.1")
            walk.button("Define")
            walk.operation_page()
            walk.link(net, "p.crumbs")
            walk.card(lambda: walk.button("Start"), "#network-action-result")
            page.locator("#network-state .badge", has_text="active").wait_for(timeout=30000)
            assert "Active:         yes" in virsh("net-info", net).stdout
            assert sh("ip", "link", "show", bridge).returncode == 0

        # 18. A domain on that network, from the full copy's rootfs; it starts.
        with walk.step("domain"):
            walk.nav("Containers")
            walk.link("New libvirt-LXC domain")
            form = page.locator("form:has(input[name=mode][value=form])")
            form.locator("input[name=name]").fill(dom)
            form.locator("input[name=memory_mib]").fill("64")
            form.locator("input[name=init]").fill("/bin/sh")
            form.locator("input[name=rootfs]").fill(f"{P}/{copy}/rootfs")
            form.locator("input[name=network]").fill(net)
            form.get_by_role("button", name="Define").click()
            walk.operation_page()
            walk.open_container(dom)
            walk.card(lambda: walk.button("Start", "#container-state"))
            walk.state("RUNNING")
            assert virsh("domstate", dom).stdout.strip() == "running"
            assert f"<source network='{net}'" in virsh("dumpxml", dom).stdout

        # 19. Its console page opens and answers.
        with walk.step("console"):
            walk.link("Console", "#container-state")
            page.locator("#terminal .xterm").wait_for(timeout=15000)
            page.locator("#terminal-status", has_text="onnected").wait_for(timeout=20000)
            for _ in range(10):
                page.click("#terminal")
                page.keyboard.type("echo walk-$((6*7))\n")
                with contextlib.suppress(Exception):
                    page.locator("#terminal .xterm-rows", has_text="walk-42").wait_for(timeout=2000)
                    break
            assert "walk-42" in page.inner_text("#terminal .xterm-rows")

        # 20. A second loop device, attached to the domain and detached (virsh dumpxml).
        with walk.step("attach and detach"):
            walk.nav("Storage")
            walk.link("New loop device")
            page.fill("input[name=name]", world.name("disk2"))
            page.fill("input[name=size]", "16M")
            walk.button("Create and attach")
            loop2 = walk.operation_page().result["device"]
            walk.open_container(dom)
            disks = page.locator("#domain-disks")
            assert "No block devices attached" in disks.inner_text()
            page.select_option("select[name=device]", loop2)
            page.select_option("select[name=target]", "vdb")
            walk.card(lambda: walk.button("Attach (live)"))
            disks.locator("tr[data-target='vdb']").wait_for(timeout=15000)
            assert loop2 in disks.inner_text()
            assert f"<source dev='{loop2}'/>" in virsh("dumpxml", dom).stdout
            walk.card(lambda: disks.get_by_role("button", name="Detach").click())
            disks.locator("text=No block devices attached").wait_for(timeout=15000)
            assert loop2 not in virsh("dumpxml", dom).stdout

        # 21. The first container converted to a domain (domxml-from-native), defined and started.
        with walk.step("conversion"):
            walk.open_container(c1)
            walk.card(lambda: walk.button("Stop", "#container-state"))
            walk.state("STOPPED")
            walk.link("Convert to libvirt…")
            page.fill("input[name=new_name]", conv)
            walk.button("Convert")
            conversion = page.locator("#conversion")
            conversion.locator("textarea[name=xml], .alert.error").first.wait_for(timeout=60000)
            if conversion.locator("textarea[name=xml]").count() == 0:
                # libvirt wants a size on every tmpfs entry: the page says so and links the editor.
                assert "size=" in conversion.inner_text()
                walk.link("Edit the configuration", "#conversion")
                text = page.input_value("textarea[name=text]")
                assert "tmpfs defaults,create=dir" in text
                page.fill("textarea[name=text]", text.replace("tmpfs defaults,", "tmpfs defaults,size=64m,"))
                walk.button("Show the changes")
                assert "size=64m" in page.inner_text("pre.diff")
                walk.button("Save this file")
                walk.operation_page()
                walk.open_container(c1)
                walk.link("Convert to libvirt…")
                page.fill("input[name=new_name]", conv)
                walk.button("Convert")
                conversion.locator("textarea[name=xml]").wait_for(timeout=60000)
            xml = page.input_value("#conversion textarea[name=xml]")
            assert f"<name>{conv}</name>" in xml and f"{P}/{c1}/rootfs" in xml
            walk.button("Define this domain")
            walk.operation_page()
            walk.open_container(conv)
            walk.card(lambda: walk.button("Start", "#container-state"))
            walk.state("RUNNING")
            assert virsh("domstate", conv).stdout.strip() == "running"

        # 22. Teardown in the safe order, through the pages.
        with walk.step("teardown: domains"):
            for name in (conv, dom):
                walk.open_container(name)
                walk.card(lambda: walk.button("Destroy (force off)", "#container-state"))
                walk.state("STOPPED")
                walk.card(lambda: walk.button("Undefine", "#container-state"))
                page.locator("#container-state .gone").wait_for(timeout=30000)
                assert virsh("dominfo", name).returncode != 0
        with walk.step("teardown: network"):
            walk.nav("Networks")
            walk.link(net)
            walk.card(lambda: walk.button("Stop (net-destroy)"), "#network-action-result")
            walk.button("Undefine")
            walk.operation_page()
            assert virsh("net-info", net).returncode != 0
        with walk.step("teardown: containers"):
            for name in (bsnap, bc, snap, c1, copy):
                walk.open_container(name)
                walk.link("Destroy…")
                page.fill("input[name=confirm]", name)
                walk.button("Destroy")
                walk.operation_page()
            assert lxc_names(P) == [] and lxc_names(pool.lxc_path) == []
            assert not Container.objects.filter(backend=Backend.LXC).exists()
        with walk.step("teardown: pool and loop devices"):
            walk.nav("Storage")
            walk.link(pool_name)
            walk.link("Destroy…")
            page.fill("input[name=confirm]", pool_name)
            walk.button("Destroy")
            walk.operation_page()
            assert sh("findmnt", pool.lxc_path).returncode != 0
            for device in (loop2, loop1):
                walk.nav("Storage")
                page.locator("tr", has=page.locator(f"code:text-is('{device}')")).get_by_role(
                    "link", name="Detach…"
                ).click()
                page.fill("input[name=confirm]", device)
                page.check("input[name=delete_file]")
                walk.button("Detach")
                walk.operation_page()
            assert not loop_of(image)
    finally:
        total = time.monotonic() - started
        lines = [f"{name:32} {seconds:6.1f} s" for name, seconds in walk.times]
        lines.append(f"{'the walk':32} {total:6.1f} s")
        SHOTS.mkdir(parents=True, exist_ok=True)
        (SHOTS / "walk-times.txt").write_text("\n".join(lines) + "\n")
        print("\n" + "\n".join(lines))
    whole = [url for url, _status, html in walk.partials if html]
    assert not whole, f"live panels received whole pages: {whole}"
    assert len(walk.partials) > 20  # the hook saw the panels' requests
    assert walk.checked >= 30  # every operation's page was checked
