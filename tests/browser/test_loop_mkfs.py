"""A filesystem on a loop device from the storage page (mkfs.ext4 by the host's agent), with the
typed-device confirmation and, over data, the "wipe" box: the seed chapter's step before it gives
the device to a libvirt domain."""

from __future__ import annotations

import os
import subprocess
import tempfile

import pytest

from console.models import Host, Operation
from storage.models import LoopDevice
from tests.browser.helpers import PASSWORD, login
from tests.host.helpers import wait_terminal
from tests.hosttools import require_tool, wait_for

pytestmark = [pytest.mark.host, pytest.mark.browser]


def blkid_type(device: str) -> str:
    out = subprocess.run(["blkid", "-p", "-o", "value", "-s", "TYPE", device], capture_output=True, text=True)
    return out.stdout.strip()


def test_make_an_ext4_filesystem_on_a_loop_device(page, live_server, make_user, local_agent):
    require_tool("losetup", "mkfs.ext4", "blkid")
    make_user("mkfs-admin", role="admin", password=PASSWORD)
    host = Host.objects.get(slug=local_agent.slug)
    fd, image = tempfile.mkstemp(prefix="console-mkfs-", suffix=".img", dir="/var/tmp")
    os.close(fd)
    os.truncate(image, 32 * 1024**2)
    device = subprocess.run(
        ["losetup", "--find", "--show", image], capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        loop = wait_for(
            lambda: LoopDevice.objects.filter(host=host, device=device).first(), 30, what="the loop device"
        )
        login(page, live_server.url, "mkfs-admin")

        def open_form() -> None:
            page.goto(f"{live_server.url}/storage/")
            page.locator("tr", has_text=device).get_by_role("link", name="Make a filesystem…").click()
            page.wait_for_url(f"**/storage/loop/{loop.pk}/mkfs/")

        def submit() -> None:
            page.get_by_role("button", name="Make the filesystem").click()
            page.wait_for_load_state()

        open_form()
        page.get_by_label("Type the device").fill("/dev/loop-wrong")
        submit()
        assert f"type {device} to confirm" in page.inner_text("main")
        assert not Operation.objects.filter(kind="storage.loop.mkfs").exists()
        page.get_by_label("Type the device").fill(device)
        submit()
        page.wait_for_url("**/operations/*/")
        op = wait_terminal(Operation.objects.get(kind="storage.loop.mkfs"))
        assert op.status == "succeeded", op.error + op.log
        assert blkid_type(device) == "ext4"
        wait_for(lambda: LoopDevice.objects.get(pk=loop.pk).fstype == "ext4", 10, what="ext4 read back")

        # Again, now over a filesystem: refused until "wipe" is ticked; what was typed stays.
        open_form()
        assert "holds ext4 data now" in page.inner_text("main")
        page.get_by_label("Type the device").fill(device)
        submit()
        assert "tick 'wipe'" in page.inner_text("main")
        assert page.get_by_label("Type the device").input_value() == device
        assert Operation.objects.filter(kind="storage.loop.mkfs").count() == 1
        page.get_by_label("Wipe the device").check()
        submit()
        page.wait_for_url("**/operations/*/")
        op = wait_terminal(Operation.objects.filter(kind="storage.loop.mkfs").latest("pk"))
        assert op.status == "succeeded", op.error + op.log
        assert op.params["wipe"] is True and blkid_type(device) == "ext4"
    finally:
        subprocess.run(["losetup", "-d", device], capture_output=True, timeout=30)
        os.unlink(image)
