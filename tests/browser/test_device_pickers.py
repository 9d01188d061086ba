"""The new-pool form picks its device from the chosen host's free block devices (what the agent's
storage inventory read), follows a change of host without reload (keeping what was typed), and
the storage page's "Make a pool…" link opens it with that host and device chosen."""

from __future__ import annotations

import pytest

from console.models import Host, Operation
from storage.models import HostStorage, LoopDevice, Pool
from tests.browser.helpers import PASSWORD, login
from tests.hosttools import wait_for

pytestmark = [pytest.mark.browser]


def dev(path: str, **kw) -> dict:
    return {"path": path, "size": 2**30, "type": "loop", "fstype": "", "mountpoint": "", **kw}


def options(page) -> list[str]:
    return page.eval_on_selector_all("select[name=device] option", "els => els.map(e => e.value)")


def test_pool_device_is_picked_from_the_hosts_free_devices(page, live_server, make_user):
    a = Host.objects.create(slug="rack-a", name="a", lxc_path="/var/lib/lxc")
    b = Host.objects.create(slug="rack-b", name="b", lxc_path="/var/lib/lxc")
    HostStorage.objects.create(
        host=a,
        image_dir="/srv/img",
        block_devices=[dev("/dev/loop0"), dev("/dev/loop1", fstype="btrfs", mountpoint="/srv/pools/x")],
    )
    HostStorage.objects.create(
        host=b,
        image_dir="/srv/img",
        block_devices=[dev("/dev/loop5"), dev("/dev/loop6", fstype="LVM2_member")],
    )
    LoopDevice.objects.create(host=b, device="/dev/loop5", backing_file="/srv/img/b5.img", size_bytes=2**30)
    Pool.objects.create(host=b, name="vg", kind="lvm", source="/dev/loop6", vg_name="lxc")
    make_user("picker-admin", role="admin", password=PASSWORD)
    login(page, live_server.url, "picker-admin")

    page.goto(f"{live_server.url}/storage/pools/new/")
    assert page.input_value("select[name=host]") == "rack-a"
    assert options(page) == ["", "/dev/loop0"]  # the mounted one is not offered, nor rack-b's
    page.fill("input[name=name]", "typed")
    page.select_option("select[name=host]", "rack-b")
    wait_for(
        lambda: options(page) == ["", "/dev/loop5"], 10, what="rack-b's free devices"
    )  # loop6 is a pool's
    assert page.input_value("input[name=name]") == "typed"

    # From the storage page: "Make a pool…" on rack-b's blank loop device.
    page.goto(f"{live_server.url}/storage/")
    page.get_by_role("link", name="Make a pool…").click()
    page.wait_for_url(lambda url: "/storage/pools/new/" in url and "host=rack-b" in url)
    assert page.input_value("select[name=host]") == "rack-b"
    assert page.input_value("select[name=device]") == "/dev/loop5"
    page.fill("input[name=name]", "fast")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url("**/operations/*/")
    op = Operation.objects.get(kind="storage.pool.create")
    assert (op.host_id, op.params["device"]) == (b.pk, "/dev/loop5")
