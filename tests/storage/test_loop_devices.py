"""Loop devices: creating, detaching, deleting image files (service and forms)."""

from __future__ import annotations

import pytest

from console.errors import Conflict, Forbidden, InvalidInput
from console.models import AuditEvent, Operation
from containers.models import Container
from storage import services
from storage.models import LoopDevice, Pool
from tests.storage.conftest import CTX, domain_with_device, refused


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


def test_detach_needs_the_device_typed(client, admin, host, inventory):
    loop = LoopDevice.objects.create(host=host, device="/dev/loop0", backing_file="/srv/a.img")
    client.force_login(admin)
    response = client.post(f"/storage/loop/{loop.pk}/detach/", {"confirm": "/dev/loop1"})
    assert response.status_code == 400 and Operation.objects.count() == 0
    response = client.post(f"/storage/loop/{loop.pk}/detach/", {"confirm": "/dev/loop0"})
    assert response.status_code == 302 and Operation.objects.get().kind == "storage.loop.detach"


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


def test_detach_refused_while_a_domain_has_the_device(client, admin, storage_host):
    loop = LoopDevice.objects.create(host=storage_host, device="/dev/loop3", backing_file="/x/d.img")
    domain_with_device(storage_host, "/dev/loop3")
    exc = refused(lambda: services.detach_loop_device(actor=admin, ctx=CTX, loop=loop), Conflict)
    assert "domain dom1" in exc.message and "detach /dev/loop3 from the domain dom1" in exc.message
    client.force_login(admin)
    page = client.get(f"/storage/loop/{loop.pk}/detach/").content.decode()
    assert "detach /dev/loop3 from the domain dom1 (virsh detach-disk)" in page


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


def test_viewer_is_refused(client, viewer, host, inventory):
    client.force_login(viewer)
    response = client.post("/storage/loop/new/", {"host": "testhost", "name": "disk1", "size": "1G"})
    assert response.status_code == 403 and Operation.objects.count() == 0


def test_storage_page_offers_detach_only_for_a_loop_nothing_holds(client, admin, host, inventory):
    free = LoopDevice.objects.create(host=host, device="/dev/loop0", backing_file="/srv/a.img")
    pooled = LoopDevice.objects.create(host=host, device="/dev/loop1", backing_file="/srv/b.img")
    mounted = LoopDevice.objects.create(
        host=host, device="/dev/loop2", backing_file="/srv/c.img", fstype="ext4", mountpoint="/mnt/c"
    )
    given = LoopDevice.objects.create(host=host, device="/dev/loop3", backing_file="/srv/d.img")
    Pool.objects.create(host=host, name="fast", kind="btrfs", source="/dev/loop1", lxc_path="/srv/f")
    domain_with_device(host, "/dev/loop3")
    client.force_login(admin)
    page = client.get("/storage/").content.decode()
    assert f"/storage/loop/{free.pk}/detach/" in page
    for held, reason in ((pooled, "pool fast"), (mounted, "mount /mnt/c"), (given, "domain dom1")):
        assert f"/storage/loop/{held.pk}/detach/" not in page
        assert f'disabled title="remove what depends on it first: {reason}"' in page
        why = f"Detach is not possible while these depend on it: {reason}."
        assert f'id="detach-blocked-{held.pk}">{why}' in page
