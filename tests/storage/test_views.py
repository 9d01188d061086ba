"""Storage pages: empty states, inventory tables, forms that redirect to the operation's page."""

from __future__ import annotations

import re

import pytest

from console.models import Operation
from storage.models import HostStorage, LoopDevice, Pool


@pytest.fixture
def inventory(host):
    return HostStorage.objects.create(
        host=host,
        image_dir="/var/lib/lxc-console/storage",
        image_dir_free_bytes=50 * 1024**3,
        block_devices=[
            {"path": "/dev/loop0", "size": 2 * 1024**3, "type": "loop", "fstype": "", "mountpoint": ""}
        ],
    )


def test_empty_states_say_what_to_do(client, admin, host, inventory):
    client.force_login(admin)
    page = client.get("/storage/").content.decode()
    assert "No pools on testhost" in page and "make a btrfs pool" in page
    assert "No loop devices on testhost" in page and "Create a file and attach it" in page


def test_index_shows_loop_devices_and_pool_usage(client, admin, host, inventory):
    LoopDevice.objects.create(
        host=host, device="/dev/loop0", backing_file="/srv/a.img", size_bytes=2 * 1024**3
    )
    Pool.objects.create(
        host=host,
        name="fast",
        kind="btrfs",
        source="/dev/loop0",
        lxc_path="/p/fast",
        capacity_bytes=2 * 1024**3,
        used_bytes=512 * 1024**2,
    )
    client.force_login(admin)
    page = client.get("/storage/").content.decode()
    assert "/srv/a.img" in page and "2.0\xa0GB" in page
    assert 'value="25"' in page and "512.0\xa0MB of 2.0\xa0GB (25%)" in page


def test_pool_detail_shows_subvolumes_and_lvm_tables(client, admin, host):
    b = Pool.objects.create(
        host=host,
        name="fast",
        kind="btrfs",
        lxc_path="/p/fast",
        mountpoint="/p/fast",
        details={"subvolumes": [{"id": 256, "gen": 9, "top_level": 5, "path": "web/rootfs"}]},
    )
    lv = Pool.objects.create(
        host=host,
        name="lv",
        kind="lvm",
        vg_name="lxc",
        source="/dev/loop1",
        details={
            "pvs": [{"name": "/dev/loop1", "vg": "lxc", "fmt": "lvm2", "attr": "a--", "size": 1, "free": 1}],
            "vgs": [
                {
                    "name": "lxc",
                    "pv_count": 1,
                    "lv_count": 0,
                    "snap_count": 0,
                    "attr": "wz--n-",
                    "size": 1,
                    "free": 1,
                }
            ],
            "lvs": [],
        },
    )
    client.force_login(admin)
    assert "web/rootfs" in client.get(f"/storage/pools/{b.pk}/").content.decode()
    page = client.get(f"/storage/pools/{lv.pk}/").content.decode()
    assert "wz--n-" in page and "No logical volumes in lxc" in page


def test_loop_create_redirects_to_the_operation(client, admin, host, inventory):
    client.force_login(admin)
    response = client.post("/storage/loop/new/", {"host": "testhost", "name": "disk1", "size": "1G"})
    op = Operation.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/operations/{op.pk}/"


def test_loop_create_bad_size_shows_the_message(client, admin, host, inventory):
    client.force_login(admin)
    response = client.post("/storage/loop/new/", {"host": "testhost", "name": "disk1", "size": "-5G"})
    assert response.status_code == 400
    assert "the size must be larger than zero" in response.content.decode()
    assert Operation.objects.count() == 0


def test_pool_create_without_wipe_on_a_used_device(client, admin, host, inventory):
    inventory.block_devices = [
        {"path": "/dev/loop0", "size": 2**31, "type": "loop", "fstype": "btrfs", "mountpoint": ""}
    ]
    inventory.save()
    client.force_login(admin)
    response = client.post(
        "/storage/pools/new/", {"host": "testhost", "name": "fast", "kind": "btrfs", "device": "/dev/loop0"}
    )
    assert response.status_code == 409 and "tick &#x27;wipe&#x27;" in response.content.decode()
    assert Operation.objects.count() == 0


def test_viewer_is_refused(client, viewer, host, inventory):
    client.force_login(viewer)
    response = client.post("/storage/loop/new/", {"host": "testhost", "name": "disk1", "size": "1G"})
    assert response.status_code == 403 and Operation.objects.count() == 0


def test_detach_needs_the_device_typed(client, admin, host, inventory):
    loop = LoopDevice.objects.create(host=host, device="/dev/loop0", backing_file="/srv/a.img")
    client.force_login(admin)
    response = client.post(f"/storage/loop/{loop.pk}/detach/", {"confirm": "/dev/loop1"})
    assert response.status_code == 400 and Operation.objects.count() == 0
    response = client.post(f"/storage/loop/{loop.pk}/detach/", {"confirm": "/dev/loop0"})
    assert response.status_code == 302 and Operation.objects.get().kind == "storage.loop.detach"


def test_pool_with_containers_cannot_be_destroyed_and_says_so_once(client, admin, host, inventory):
    from containers.models import Container

    pool = Pool.objects.create(host=host, name="fast", kind="btrfs", source="/dev/loop0", lxc_path="/srv/f")
    Container.objects.create(host=host, name="lives-here", lxc_path="/srv/f", state="STOPPED")
    client.force_login(admin)
    detail = client.get(f"/storage/pools/{pool.pk}/").content.decode()
    assert f"/storage/pools/{pool.pk}/destroy/" not in detail
    assert "Destroy is not possible while something lives on the pool" in detail
    page = client.get(f"/storage/pools/{pool.pk}/destroy/").content.decode()
    assert '<button type="submit" class="danger" disabled' in page
    response = client.post(f"/storage/pools/{pool.pk}/destroy/", {"confirm": "fast"})
    assert response.status_code == 409 and Operation.objects.count() == 0
    assert response.content.decode().count("destroy the container lives-here") == 1


def _device_options(body: str) -> list[str]:
    found = re.search(r'<select name="device"[^>]*>(.*?)</select>', body, re.S)
    assert found, "no device select on the page"
    select = found.group(1)
    return re.findall(r'<option value="([^"]*)"', select)


def test_pool_create_offers_the_chosen_hosts_free_devices(client, admin, host, inventory):
    from console.models import Host

    def dev(path, **kw):
        return {"path": path, "size": 2**30, "type": "loop", "fstype": "", "mountpoint": "", **kw}

    inventory.block_devices = [
        dev("/dev/loop0"),
        dev("/dev/loop1", fstype="btrfs", mountpoint="/srv/pools/p1"),  # mounted
        dev("/dev/loop2", fstype="LVM2_member"),  # a pool's device
        dev("/dev/loop3", fstype="ext4"),  # holds data: offered, needs wipe
        dev("/dev/vda", type="disk"),  # has a partition: offered by the partition
        dev("/dev/vda1", type="part", mountpoint="/", parent="/dev/vda"),
        dev("/dev/zram0", type="disk", size=0),
    ]
    inventory.save()
    Pool.objects.create(host=host, name="vg", kind="lvm", source="/dev/loop2", vg_name="lxc")
    other = Host.objects.create(slug="otherhost", name="other", lxc_path="/var/lib/lxc")
    HostStorage.objects.create(host=other, image_dir="/x", block_devices=[dev("/dev/loop7")])
    client.force_login(admin)
    body = client.get("/storage/pools/new/?host=testhost").content.decode()
    assert _device_options(body) == ["", "/dev/loop0", "/dev/loop3"]
    assert "/dev/loop3 — 1 GiB loop, holds ext4 (needs wipe)" in body
    body = client.get("/storage/pools/new/?host=otherhost").content.decode()
    assert _device_options(body) == ["", "/dev/loop7"]
    # Choosing another host in the form reads its devices (a partial, no page in the page).
    partial = client.get("/storage/pools/new/?host=otherhost", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in partial and _device_options(partial) == ["", "/dev/loop7"]
    # The index's "Make a pool…" link opens the form on the device's host.
    body = client.get("/storage/pools/new/?host=testhost&device=/dev/loop3").content.decode()
    assert '<option value="/dev/loop3" selected>' in body


def test_mkfs_needs_the_device_typed_and_wipe_over_data(client, admin, host, inventory):
    loop = LoopDevice.objects.create(
        host=host, device="/dev/loop0", backing_file="/srv/a.img", fstype="btrfs"
    )
    client.force_login(admin)
    page = client.get("/storage/").content.decode()
    assert f"/storage/loop/{loop.pk}/mkfs/" in page  # offered from the loop device's row
    response = client.post(f"/storage/loop/{loop.pk}/mkfs/", {"confirm": "/dev/loop1"})
    assert response.status_code == 400 and Operation.objects.count() == 0
    response = client.post(f"/storage/loop/{loop.pk}/mkfs/", {"confirm": "/dev/loop0"})
    assert response.status_code == 409 and "tick &#x27;wipe&#x27;" in response.content.decode()
    assert 'name="confirm" value="/dev/loop0"' in response.content.decode()  # what was typed stays
    response = client.post(f"/storage/loop/{loop.pk}/mkfs/", {"confirm": "/dev/loop0", "wipe": "on"})
    op = Operation.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/operations/{op.pk}/"
    assert op.kind == "storage.loop.mkfs"
    assert op.params == {"device": "/dev/loop0", "backing_file": "/srv/a.img", "wipe": True}


def test_mkfs_is_refused_on_a_device_a_pool_or_a_domain_uses(client, admin, host, inventory):
    from containers.libvirt.domain_xml import DomainSpec, build_domain_xml
    from containers.models import Container

    used = LoopDevice.objects.create(host=host, device="/dev/loop0", backing_file="/srv/a.img")
    Pool.objects.create(host=host, name="fast", kind="btrfs", source="/dev/loop0", lxc_path="/srv/f")
    given = LoopDevice.objects.create(host=host, device="/dev/loop1", backing_file="/srv/b.img")
    xml = build_domain_xml(DomainSpec("dom1", 64, 1, "/bin/sh", "/srv/r", mac="00:16:3e:00:00:01"))
    Container.objects.create(
        host=host,
        name="dom1",
        backend="libvirt",
        state="RUNNING",
        domain_xml=xml.replace(
            "</devices>",
            "<disk type='block' device='disk'><source dev='/dev/loop1'/>"
            "<target dev='vdb' bus='virtio'/></disk></devices>",
        ),
    )
    client.force_login(admin)
    page = client.get(f"/storage/loop/{used.pk}/mkfs/").content.decode()
    assert '<button type="submit" class="danger" disabled' in page
    response = client.post(f"/storage/loop/{used.pk}/mkfs/", {"confirm": "/dev/loop0", "wipe": "on"})
    assert response.status_code == 409 and response.content.decode().count("destroy the btrfs pool fast") == 1
    response = client.post(f"/storage/loop/{given.pk}/mkfs/", {"confirm": "/dev/loop1", "wipe": "on"})
    assert response.status_code == 409 and "attached to domain &#x27;dom1&#x27;" in response.content.decode()
    assert Operation.objects.count() == 0


def test_a_mounted_partition_blocks_its_disk_and_only_its_disk(client, admin, host, inventory):
    def dev(path, **kw):
        return {"path": path, "size": 2**30, "type": "loop", "fstype": "", "mountpoint": "", **kw}

    inventory.block_devices = [
        dev("/dev/loop1"),
        dev("/dev/loop10", fstype="ext4", mountpoint="/mnt/ten"),  # not a partition of loop1
        dev("/dev/loop2"),
        dev("/dev/loop2p1", type="part", fstype="ext4", mountpoint="/mnt/p", parent="/dev/loop2"),
    ]
    inventory.save()
    client.force_login(admin)

    def create(device: str):
        return client.post(
            "/storage/pools/new/",
            {"host": "testhost", "name": "p" + device[-1], "kind": "btrfs", "device": device},
        )

    response = create("/dev/loop2")
    assert response.status_code == 409 and "a partition of /dev/loop2 is mounted" in response.content.decode()
    assert Operation.objects.count() == 0
    assert create("/dev/loop1").status_code == 302
    assert Operation.objects.get().params["device"] == "/dev/loop1"
