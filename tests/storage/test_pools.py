"""Pools: creating (devices, names, kinds), the detail page, destroying (what depends on them)."""

from __future__ import annotations

import re

import pytest

from console.errors import Conflict, InvalidInput
from console.models import Operation
from containers.models import Container
from storage import services
from storage.models import HostStorage, Pool
from tests.storage.conftest import CTX, pool, refused


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


def test_btrfs_pool_on_a_blank_loop_device(admin, storage_host, tmp_path):
    op = pool(admin, storage_host, device="/dev/loop0")()
    assert op.kind == "storage.pool.create" and op.lock_key == "pool:testhost:fast"
    assert op.params == {
        "name": "fast",
        "kind": "btrfs",
        "lxc_path": str(tmp_path / "pools" / "fast"),
        "wipe": False,
        "device": "/dev/loop0",
    }


@pytest.mark.parametrize(
    ("device", "error", "words"),
    [
        ("/dev/loop2", Conflict, "is mounted at /mnt/x"),
        ("/dev/vda", Conflict, "is mounted at /"),
        ("/dev/loop7", InvalidInput, "is not a block device of host"),
        ("/etc/passwd", InvalidInput, "not a device path under /dev"),
        ("/dev/../etc/passwd", InvalidInput, "not a device path under /dev"),
        ("", InvalidInput, "a block device is required"),
        ("/dev/loop3", InvalidInput, "too small for btrfs"),
    ],
)
def test_bad_devices_are_refused(admin, storage_host, device, error, words):
    exc = refused(pool(admin, storage_host, device=device), error)
    assert words in exc.message


@pytest.mark.parametrize("name", ["-x", "../up", "a b", "", "é", "x" * 64])
def test_bad_pool_names_are_refused(admin, storage_host, name):
    exc = refused(pool(admin, storage_host, name=name, device="/dev/loop0"), InvalidInput)
    assert "pool name" in exc.message


def test_device_already_backing_a_pool_is_refused(admin, storage_host):
    Pool.objects.create(host=storage_host, name="old", kind="lvm", source="/dev/loop0", vg_name="vg0")
    exc = refused(pool(admin, storage_host, device="/dev/loop0"), Conflict)
    assert "already backs the lvm pool old" in exc.message


def test_existing_volume_group_name_is_refused(admin, storage_host):
    exc = refused(pool(admin, storage_host, kind="lvm", device="/dev/loop0", vg_name="vg0"), Conflict)
    assert "a volume group named 'vg0' already exists" in exc.message


def test_lvm_pool_defaults_to_volume_group_lxc(admin, storage_host):
    op = pool(admin, storage_host, name="lvpool", kind="lvm", device="/dev/loop0")()
    assert op.params["vg_name"] == "lxc"


def test_bad_volume_group_names(admin, storage_host):
    refused(pool(admin, storage_host, kind="lvm", device="/dev/loop0", vg_name="-vg"), InvalidInput)


def test_zfs_pool_refused_without_the_kernel_module(admin, storage_host):
    exc = refused(pool(admin, storage_host, kind="zfs", device="/dev/loop0"), InvalidInput)
    assert "no ZFS kernel module" in exc.message


def test_existing_zpool_name_is_refused_where_zfs_runs(admin, storage_host):
    storage_host.capabilities = {**storage_host.capabilities, "zfs": {"available": True, "kernel": True}}
    storage_host.save()
    HostStorage.objects.filter(host=storage_host).update(zpools=["tank"])
    exc = refused(pool(admin, storage_host, name="tank", kind="zfs", device="/dev/loop0"), Conflict)
    assert exc.message == "a ZFS pool named 'tank' already exists on host testhost"
    op = pool(admin, storage_host, name="lxc", kind="zfs", device="/dev/loop0")()
    assert (op.params["kind"], op.params["zpool"], op.params["device"]) == ("zfs", "lxc", "/dev/loop0")


def test_unknown_kind_and_duplicate_name(admin, storage_host):
    refused(pool(admin, storage_host, kind="ext9", device="/dev/loop0"), InvalidInput)


def test_duplicate_pool_name(admin, storage_host):
    Pool.objects.create(host=storage_host, name="fast", kind="dir", lxc_path="/srv/fast")
    refused(pool(admin, storage_host, device="/dev/loop0"), Conflict)


def test_dir_pool(admin, storage_host):
    op = pool(admin, storage_host, name="plain", kind="dir", path="/srv/lxc-plain")()
    assert op.params["lxc_path"] == "/srv/lxc-plain"


def test_dir_pool_on_a_system_directory_is_refused(admin, storage_host):
    refused(pool(admin, storage_host, name="plain", kind="dir", path="/etc"), InvalidInput)


def test_destroy_pool_with_containers_lists_them_in_the_safe_order(admin, storage_host):
    p = Pool.objects.create(
        host=storage_host, name="fast", kind="btrfs", source="/dev/loop1", lxc_path="/p/fast"
    )
    a = Container.objects.create(host=storage_host, name="a", lxc_path="/p/fast")
    Container.objects.create(
        host=storage_host, name="a-snap", lxc_path="/p/fast", origin=a, origin_kind="snapshot"
    )
    exc = refused(lambda: services.destroy_pool(actor=admin, ctx=CTX, pool=p, confirm="fast"), Conflict)
    assert "1. destroy the snapshot a-snap" in exc.message and "2. destroy the container a" in exc.message


def test_destroy_lvm_pool_with_logical_volumes_lists_snapshots_first(admin, storage_host):
    p = Pool.objects.create(
        host=storage_host,
        name="lv",
        kind="lvm",
        source="/dev/loop0",
        vg_name="lxc",
        details={
            "lvs": [
                {"name": "lvm_container_2", "vg": "lxc", "attr": "owi-a-s--"},
                {"name": "container_2_copy", "vg": "lxc", "attr": "swi-a-s--"},
            ]
        },
    )
    exc = refused(lambda: services.destroy_pool(actor=admin, ctx=CTX, pool=p, confirm="lv"), Conflict)
    assert exc.message.index("lvremove lxc/container_2_copy") < exc.message.index(
        "lvremove lxc/lvm_container_2"
    )


def test_destroy_pool_needs_its_name_typed(admin, storage_host):
    p = Pool.objects.create(host=storage_host, name="fast", kind="dir", lxc_path="/p/fast")
    refused(lambda: services.destroy_pool(actor=admin, ctx=CTX, pool=p, confirm="slow"), InvalidInput)


def test_destroy_empty_pool(admin, storage_host):
    p = Pool.objects.create(host=storage_host, name="fast", kind="dir", lxc_path="/p/fast")
    op = services.destroy_pool(actor=admin, ctx=CTX, pool=p, confirm="fast")
    assert op.kind == "storage.pool.destroy" and op.params["pool_id"] == p.pk
