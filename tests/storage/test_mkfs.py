"""mkfs on a device: the device typed, wiping data only when confirmed, devices in use refused."""

from __future__ import annotations

from console.errors import Conflict
from console.models import Operation
from storage.models import LoopDevice, Pool
from tests.storage.conftest import domain_with_device, pool, refused


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
    used = LoopDevice.objects.create(host=host, device="/dev/loop0", backing_file="/srv/a.img")
    Pool.objects.create(host=host, name="fast", kind="btrfs", source="/dev/loop0", lxc_path="/srv/f")
    given = LoopDevice.objects.create(host=host, device="/dev/loop1", backing_file="/srv/b.img")
    domain_with_device(host, "/dev/loop1")
    client.force_login(admin)
    page = client.get(f"/storage/loop/{used.pk}/mkfs/").content.decode()
    assert '<button type="submit" class="danger" disabled' in page
    response = client.post(f"/storage/loop/{used.pk}/mkfs/", {"confirm": "/dev/loop0", "wipe": "on"})
    assert response.status_code == 409 and response.content.decode().count("destroy the btrfs pool fast") == 1
    response = client.post(f"/storage/loop/{given.pk}/mkfs/", {"confirm": "/dev/loop1", "wipe": "on"})
    assert response.status_code == 409
    assert "detach /dev/loop1 from the domain dom1 (virsh detach-disk)" in response.content.decode()
    assert Operation.objects.count() == 0


def test_mkfs_on_a_device_with_data_needs_the_wipe_confirmation(admin, storage_host):
    exc = refused(pool(admin, storage_host, device="/dev/loop1"), Conflict)
    assert "already holds data (btrfs)" in exc.message and exc.field == "wipe"
    op = pool(admin, storage_host, name="fast2", device="/dev/loop1", wipe=True)()
    assert op.params["wipe"] is True
