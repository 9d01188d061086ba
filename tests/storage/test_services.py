"""Storage services: bad input is refused with one "refused" audit row and no operation; good input
queues exactly one operation."""

from __future__ import annotations

import pytest

from console.errors import Conflict, Forbidden, InvalidInput, ServiceError
from console.models import AuditEvent, Operation
from console.operations import RequestContext
from containers.models import Container
from storage import services
from storage.models import HostStorage, LoopDevice, Pool

CTX = RequestContext(ip="192.0.2.20", request_id="req-storage")
G = 1024**3


@pytest.fixture
def storage_host(host, settings, tmp_path):
    settings.STORAGE_IMAGE_DIR = str(tmp_path / "images")
    settings.STORAGE_POOL_DIR = str(tmp_path / "pools")
    host.capabilities = {
        **host.capabilities,
        "loop": {"available": True, "devices": 8},
        "lvm": {"available": True, "device_mapper": False},
        "zfs": {"available": False, "kernel": False},
    }
    host.save()
    HostStorage.objects.create(
        host=host,
        image_dir=str(tmp_path / "images"),
        image_dir_free_bytes=10 * G,
        volume_groups=["vg0"],
        block_devices=[
            {"path": "/dev/vda", "size": 250 * G, "type": "disk", "fstype": "ext4", "mountpoint": "/"},
            {"path": "/dev/loop0", "size": 2 * G, "type": "loop", "fstype": "", "mountpoint": ""},
            {"path": "/dev/loop1", "size": 2 * G, "type": "loop", "fstype": "btrfs", "mountpoint": ""},
            {"path": "/dev/loop2", "size": 2 * G, "type": "loop", "fstype": "btrfs", "mountpoint": "/mnt/x"},
            {"path": "/dev/loop3", "size": 64 * 1024**2, "type": "loop", "fstype": "", "mountpoint": ""},
        ],
    )
    return host


def refused(call, exc_type=ServiceError) -> ServiceError:
    """Run a service call that must be refused: one refused audit row, no operation."""
    with pytest.raises(exc_type) as info:
        call()
    assert Operation.objects.count() == 0
    events = list(AuditEvent.objects.all())
    assert len(events) == 1, events
    assert events[0].result == "refused" and events[0].message == info.value.message
    return info.value


# --- loop devices -------------------------------------------------------------------------------


def test_create_loop_device_queues_one_operation(admin, storage_host, tmp_path):
    op = services.create_loop_device(actor=admin, ctx=CTX, host=storage_host, name="disk1", size="500M")
    assert Operation.objects.count() == 1
    assert op.kind == "storage.loop.create"
    assert op.params["path"] == str(tmp_path / "images" / "disk1.img")
    assert op.params["size_bytes"] == 500 * 1024**2 and op.params["fill"] is False
    (event,) = AuditEvent.objects.all()
    assert event.result == "accepted" and event.operation == op


@pytest.mark.parametrize(
    ("size", "words"),
    [
        ("0", "larger than zero"),
        ("0M", "larger than zero"),
        ("-5G", "larger than zero"),
        ("", "a size is required"),
        ("five", "is not a size"),
        ("5 gallons", "is not a size"),
        ("20G", "larger than the free space"),
        ("100", "at least 1M"),
    ],
)
def test_bad_sizes_are_refused(admin, storage_host, size, words):
    exc = refused(
        lambda: services.create_loop_device(actor=admin, ctx=CTX, host=storage_host, name="d", size=size),
        InvalidInput,
    )
    assert words in exc.message and exc.field == "size"


@pytest.mark.parametrize("name", ["../etc/passwd", "-rf", ".hidden", "a/b", "x" * 64, ""])
def test_bad_file_names_are_refused(admin, storage_host, name):
    refused(
        lambda: services.create_loop_device(actor=admin, ctx=CTX, host=storage_host, name=name, size="1G"),
        InvalidInput,
    )


def test_filled_file_must_be_whole_mib(admin, storage_host):
    refused(
        lambda: services.create_loop_device(
            actor=admin, ctx=CTX, host=storage_host, name="d", size="1.5K", fill=True
        ),
        InvalidInput,
    )


def test_viewer_cannot_create_loop_devices(viewer, storage_host):
    refused(
        lambda: services.create_loop_device(actor=viewer, ctx=CTX, host=storage_host, name="d", size="1G"),
        Forbidden,
    )


def test_loop_device_before_the_agent_reported_is_refused(admin, host):
    exc = refused(
        lambda: services.create_loop_device(actor=admin, ctx=CTX, host=host, name="d", size="1G"), Conflict
    )
    assert "has not reported its storage" in exc.message


def test_detach_refused_while_a_btrfs_pool_with_containers_uses_it(admin, storage_host):
    loop = LoopDevice.objects.create(
        host=storage_host, device="/dev/loop2", backing_file="/x/a.img", fstype="btrfs", mountpoint="/p/fast"
    )
    pool = Pool.objects.create(
        host=storage_host,
        name="fast",
        kind="btrfs",
        source="/dev/loop2",
        lxc_path="/p/fast",
        mountpoint="/p/fast",
    )
    origin = Container.objects.create(host=storage_host, name="web", lxc_path=pool.lxc_path, store="btrfs")
    Container.objects.create(
        host=storage_host, name="web-snap", lxc_path=pool.lxc_path, origin=origin, origin_kind="snapshot"
    )
    exc = refused(lambda: services.detach_loop_device(actor=admin, ctx=CTX, loop=loop), Conflict)
    # What depends on it, and the safe order: snapshot, its origin, the pool, then the device.
    assert exc.message.index("web-snap") < exc.message.index("container web") < exc.message.index("pool fast")
    assert "Safe order: 1. destroy the snapshot web-snap" in exc.message
    assert "destroy the btrfs pool fast" in exc.message


def test_detach_refused_for_a_physical_volume(admin, storage_host):
    loop = LoopDevice.objects.create(
        host=storage_host, device="/dev/loop0", backing_file="/x/a.img", fstype="LVM2_member"
    )
    exc = refused(lambda: services.detach_loop_device(actor=admin, ctx=CTX, loop=loop), Conflict)
    assert "physical volume /dev/loop0" in exc.message and "pvremove /dev/loop0" in exc.message


def test_detach_refused_while_mounted_elsewhere(admin, storage_host):
    loop = LoopDevice.objects.create(
        host=storage_host, device="/dev/loop2", backing_file="/x/a.img", fstype="btrfs", mountpoint="/mnt/x"
    )
    exc = refused(lambda: services.detach_loop_device(actor=admin, ctx=CTX, loop=loop), Conflict)
    assert "umount /mnt/x" in exc.message


def test_detach_a_free_device(admin, storage_host, tmp_path):
    loop = LoopDevice.objects.create(
        host=storage_host, device="/dev/loop0", backing_file=str(tmp_path / "images" / "a.img")
    )
    op = services.detach_loop_device(actor=admin, ctx=CTX, loop=loop, delete_file=True)
    assert op.kind == "storage.loop.detach" and op.lock_key == "blockdev:testhost:/dev/loop0"
    assert op.params["delete_file"] is True


def test_deleting_a_file_outside_the_image_dir_is_refused(admin, storage_host):
    loop = LoopDevice.objects.create(host=storage_host, device="/dev/loop0", backing_file="/root/keep.img")
    refused(
        lambda: services.detach_loop_device(actor=admin, ctx=CTX, loop=loop, delete_file=True), InvalidInput
    )


# --- pools --------------------------------------------------------------------------------------


def pool(admin, host, **kwargs):
    kwargs.setdefault("name", "fast")
    kwargs.setdefault("kind", "btrfs")
    return lambda: services.create_pool(actor=admin, ctx=CTX, host=host, **kwargs)


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


def test_mkfs_on_a_device_with_data_needs_the_wipe_confirmation(admin, storage_host):
    exc = refused(pool(admin, storage_host, device="/dev/loop1"), Conflict)
    assert "already holds data (btrfs)" in exc.message and exc.field == "wipe"
    op = pool(admin, storage_host, name="fast2", device="/dev/loop1", wipe=True)()
    assert op.params["wipe"] is True


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


# --- containers: backing store ------------------------------------------------------------------


def test_container_on_a_btrfs_pool_gets_btrfs_backing_store(admin, storage_host):
    from containers import services as containers

    Pool.objects.create(host=storage_host, name="fast", kind="btrfs", source="/dev/loop1", lxc_path="/p/fast")
    storage_host.extra_lxc_paths = ["/p/fast"]
    storage_host.save()
    op = containers.create_container(actor=admin, ctx=CTX, host=storage_host, name="web", lxc_path="/p/fast")
    assert op.params["backing_store"] == "btrfs"
    plain = containers.create_container(actor=admin, ctx=CTX, host=storage_host, name="web2")
    assert "backing_store" not in plain.params


def test_container_backing_store_must_fit_the_path(admin, storage_host):
    from containers import services as containers

    for store in ("zfs", "btrfs", "loop; rm -rf /"):
        with pytest.raises(InvalidInput):
            containers.create_container(
                actor=admin, ctx=CTX, host=storage_host, name="web", backing_store=store
            )
    assert Operation.objects.count() == 0
    assert AuditEvent.objects.filter(result="refused").count() == 3
