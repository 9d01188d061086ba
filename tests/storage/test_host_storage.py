"""Storage for real: loop devices, btrfs pools with btrfs-backed containers and subvolume snapshots,
LVM PV/VG on a loop device, through the services, a real Redis and a real agent.

Every test frees what it made (containers, mounts, volume groups, loop devices, files), even when
it fails: the ``storage_env`` fixture's teardown takes apart whatever is left under its own
directory, and detaches only loop devices whose backing file it created.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from console.errors import Conflict, ServiceError
from console.models import AuditEvent, Host, Operation
from console.operations import RequestContext
from containers import services as containers
from containers.models import Container
from storage import services
from storage.drivers.loop import read_mounts
from storage.models import HostStorage, LoopDevice, Pool
from tests.host.helpers import wait_terminal
from tests.hosttools import wait_for
from tests.storage.conftest import our_loops, sh

pytestmark = pytest.mark.host
CTX = RequestContext(ip="127.0.0.1", request_id="storage-host-test")


def ok(op: Operation, timeout: float = 90) -> Operation:
    op = wait_terminal(op, timeout=timeout)
    assert op.status == "succeeded", f"{op.error}\n{op.log}"
    return op


def host_of(agent) -> Host:
    host = Host.objects.get(slug=agent.slug)
    wait_for(lambda: HostStorage.objects.filter(host=host).exists(), 30, what="the storage inventory")
    return host


def make_loop(admin, host: Host, size: str = "512M", **kwargs) -> LoopDevice:
    name = f"d-{uuid.uuid4().hex[:6]}"
    op = ok(services.create_loop_device(actor=admin, ctx=CTX, host=host, name=name, size=size, **kwargs))
    device = op.result["device"]
    assert op.commands[-1]["argv"][:3] == ["losetup", "--find", "--show"]
    return LoopDevice.objects.get(host=host, device=device)


def subvolumes(path: str) -> list[str]:
    return [line.split(" path ", 1)[1] for line in sh("btrfs", "subvolume", "list", path).stdout.splitlines()]


def test_btrfs_pool_on_a_loop_device_with_btrfs_containers_and_snapshots(storage_env, admin, start_agent):
    host = host_of(start_agent())

    # 1. A sparse file on a loop device.
    loop = make_loop(admin, host, size="512M")
    assert loop.backing_file == str(storage_env / "images" / f"{Path(loop.backing_file).name}")
    assert os.path.getsize(loop.backing_file) == 512 * 1024**2
    assert os.stat(loop.backing_file).st_blocks == 0  # truncate: sparse
    assert our_loops(storage_env) == {loop.device: loop.backing_file}
    assert loop.size_bytes == 512 * 1024**2 and loop.fstype == ""

    # 2. mkfs.btrfs + mount as a pool; its mountpoint becomes an LXC path of the host.
    pool_name = f"p{uuid.uuid4().hex[:6]}"
    op = ok(
        services.create_pool(
            actor=admin, ctx=CTX, host=host, name=pool_name, kind="btrfs", device=loop.device
        )
    )
    assert [c["argv"][0] for c in op.commands][:2] == ["mkfs.btrfs", "mount"]
    pool = Pool.objects.get(host=host, name=pool_name)
    assert (loop.device, pool.lxc_path, "btrfs") in read_mounts()
    host.refresh_from_db()
    assert pool.lxc_path in host.lxc_paths
    assert pool.capacity_bytes == 512 * 1024**2 and 0 < pool.used_bytes < pool.capacity_bytes
    assert {r["type"] for r in pool.details["df"]} >= {"Data", "Metadata", "System"}

    # 3. A busybox container on the pool gets -B btrfs: its rootfs is a subvolume.
    name = f"b-{uuid.uuid4().hex[:6]}"
    op = ok(containers.create_container(actor=admin, ctx=CTX, host=host, name=name, lxc_path=pool.lxc_path))
    create_argv = next(c["argv"] for c in op.commands if c["argv"][0] == "lxc-create")
    assert create_argv[create_argv.index("-B") + 1] == "btrfs"
    origin = Container.objects.get(pk=op.result["container_id"])
    assert origin.store == "btrfs"
    assert subvolumes(pool.lxc_path) == [f"{name}/rootfs"]

    # 4. lxc-copy -s makes a btrfs subvolume snapshot (copy-on-write), seen by the pool page too.
    op = ok(
        containers.copy_container(
            actor=admin, ctx=CTX, container=origin, new_name=f"{name}-snap", snapshot=True
        )
    )
    snap = Container.objects.get(pk=op.result["container_id"])
    assert snap.origin_id == origin.pk and snap.origin_kind == "snapshot" and snap.store == "btrfs"
    assert sorted(subvolumes(pool.lxc_path)) == sorted([f"{name}/rootfs", f"{name}-snap/rootfs"])
    # A snapshot, not a copy: its parent is the origin's rootfs subvolume.
    origin_show = _subvolume_show(f"{pool.lxc_path}/{name}/rootfs")
    snap_show = _subvolume_show(f"{pool.lxc_path}/{name}-snap/rootfs")
    assert snap_show["Parent UUID"] == origin_show["UUID"] != "-"
    wait_for(
        lambda: len(Pool.objects.get(pk=pool.pk).details.get("subvolumes", [])) == 2, 15, what="the pool sync"
    )
    client_page = _page(admin, f"/storage/pools/{pool.pk}/")
    assert f"{name}-snap/rootfs" in client_page

    # A "full copy" inside the same btrfs pool is a snapshot too (LXC's choice): recorded as one.
    origin.refresh_from_db()
    op = ok(
        containers.copy_container(
            actor=admin, ctx=CTX, container=origin, new_name=f"{name}-cp", snapshot=False
        )
    )
    cp = Container.objects.get(pk=op.result["container_id"])
    assert _subvolume_show(f"{pool.lxc_path}/{name}-cp/rootfs")["Parent UUID"] == origin_show["UUID"]
    assert cp.origin_kind == "snapshot" and op.result["kind"] == "snapshot"
    assert "LXC made a btrfs subvolume snapshot, not a full copy" in op.log
    ok(containers.destroy_container(actor=admin, ctx=CTX, container=cp))
    wait_for(
        lambda: f"{name}-cp/rootfs" not in subvolumes(pool.lxc_path), 15, what="the copy's subvolume to go"
    )

    # 5. Destroying the pool or detaching its device is refused with the safe order; nothing runs.
    before = Operation.objects.count()
    with pytest.raises(Conflict) as refused:
        services.destroy_pool(actor=admin, ctx=CTX, pool=pool, confirm=pool_name)
    message = refused.value.message
    assert message.index(f"snapshot {name}-snap") < message.index(f"container {name}")
    loop.refresh_from_db()
    with pytest.raises(Conflict) as refused:
        services.detach_loop_device(actor=admin, ctx=CTX, loop=loop)
    assert f"destroy the btrfs pool {pool_name}" in refused.value.message
    assert Operation.objects.count() == before
    assert AuditEvent.objects.filter(result="refused", action="storage.pool.destroy").count() == 1
    assert (loop.device, pool.lxc_path, "btrfs") in read_mounts()

    # 6. The safe order: snapshot, origin, pool, loop device (and its file).
    ok(containers.destroy_container(actor=admin, ctx=CTX, container=snap))
    origin.refresh_from_db()
    ok(containers.destroy_container(actor=admin, ctx=CTX, container=origin))
    assert subvolumes(pool.lxc_path) == []
    op = ok(services.destroy_pool(actor=admin, ctx=CTX, pool=Pool.objects.get(pk=pool.pk), confirm=pool_name))
    assert ["umount", pool.lxc_path] in [c["argv"] for c in op.commands]
    assert not [t for _s, t, _f in read_mounts() if t == pool.lxc_path]
    host.refresh_from_db()
    assert pool.lxc_path not in host.lxc_paths and not Pool.objects.filter(pk=pool.pk).exists()
    loop = LoopDevice.objects.get(pk=loop.pk)
    ok(services.detach_loop_device(actor=admin, ctx=CTX, loop=loop, delete_file=True))
    assert our_loops(storage_env) == {} and not os.path.exists(loop.backing_file)
    assert not LoopDevice.objects.filter(host=host, device=loop.device).exists()


def _subvolume_show(path: str) -> dict[str, str]:
    out = {}
    for line in sh("btrfs", "subvolume", "show", path).stdout.splitlines():
        key, sep, value = line.strip().partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


def _page(user, url: str) -> str:
    from django.test import Client

    client = Client()
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def test_lvm_volume_group_on_a_loop_device(storage_env, admin, start_agent):
    host = host_of(start_agent())
    loop = make_loop(admin, host, size="64M", fill=True)  # dd: a filled file
    assert os.stat(loop.backing_file).st_blocks * 512 >= 64 * 1024**2
    vg = f"t{uuid.uuid4().hex[:8]}"
    op = ok(
        services.create_pool(
            actor=admin, ctx=CTX, host=host, name=f"lv-{vg}", kind="lvm", device=loop.device, vg_name=vg
        )
    )
    assert [c["argv"] for c in op.commands][:2] == [["pvcreate", loop.device], ["vgcreate", vg, loop.device]]
    pool = Pool.objects.get(host=host, vg_name=vg)
    assert pool.details["pvs"][0]["name"] == loop.device and pool.details["vgs"][0]["name"] == vg
    assert pool.details["lvs"] == [] and pool.capacity_bytes > 0 and pool.used_bytes == 0
    assert "LVM2_member" in sh("blkid", "-p", "-o", "export", loop.device).stdout
    assert "wz--n-" in _page(admin, f"/storage/pools/{pool.pk}/")

    # A second VG of the same name and detaching the PV are refused; nothing runs.
    other = make_loop(admin, host, size="64M")
    before = Operation.objects.count()
    with pytest.raises(Conflict, match="already exists"):
        services.create_pool(
            actor=admin, ctx=CTX, host=host, name="again", kind="lvm", device=other.device, vg_name=vg
        )
    loop.refresh_from_db()
    with pytest.raises(Conflict, match="pool"):
        services.detach_loop_device(actor=admin, ctx=CTX, loop=loop)
    assert Operation.objects.count() == before

    op = ok(services.destroy_pool(actor=admin, ctx=CTX, pool=pool, confirm=pool.name))
    assert [c["argv"] for c in op.commands if c["argv"][0] in ("vgremove", "pvremove")] == [
        ["vgremove", vg],
        ["pvremove", loop.device],
    ]
    assert sh("blkid", "-p", "-o", "export", loop.device, check=False).returncode == 2  # blank again
    for device in (loop, other):
        ok(
            services.detach_loop_device(
                actor=admin, ctx=CTX, loop=LoopDevice.objects.get(pk=device.pk), delete_file=True
            )
        )
    assert our_loops(storage_env) == {}


def test_mkfs_on_a_device_that_holds_a_filesystem_needs_the_wipe_confirmation(
    storage_env, admin, start_agent
):
    host = host_of(start_agent())
    loop = make_loop(admin, host, size="200M")
    name = f"p{uuid.uuid4().hex[:6]}"
    ok(services.create_pool(actor=admin, ctx=CTX, host=host, name=name, kind="btrfs", device=loop.device))
    ok(services.destroy_pool(actor=admin, ctx=CTX, pool=Pool.objects.get(host=host, name=name), confirm=name))
    # The filesystem is still on the device: the inventory knows it from blkid.
    wait_for(lambda: LoopDevice.objects.get(pk=loop.pk).fstype == "btrfs", 15, what="blkid in the inventory")
    wait_for(lambda: HostStorage.objects.get(host=host).block_device(loop.device)["fstype"] == "btrfs", 15)
    before = Operation.objects.count()
    with pytest.raises(Conflict, match="already holds data"):
        services.create_pool(actor=admin, ctx=CTX, host=host, name=name, kind="btrfs", device=loop.device)
    assert Operation.objects.count() == before
    op = ok(
        services.create_pool(
            actor=admin, ctx=CTX, host=host, name=name, kind="btrfs", device=loop.device, wipe=True
        )
    )
    assert "-f" in op.commands[0]["argv"] and op.commands[0]["argv"][0] == "mkfs.btrfs"
    ok(services.destroy_pool(actor=admin, ctx=CTX, pool=Pool.objects.get(host=host, name=name), confirm=name))
    ok(
        services.detach_loop_device(
            actor=admin, ctx=CTX, loop=LoopDevice.objects.get(pk=loop.pk), delete_file=True
        )
    )
    assert our_loops(storage_env) == {}


def test_the_agent_checks_the_device_again_on_the_host(storage_env, host):
    """The page's inventory may be seconds old: before mkfs/pvcreate the agent asks the host
    itself (stat, lsblk, blkid through its runner) and refuses with nothing done."""
    from console.runner import Runner
    from storage.handlers import _check_blank

    op = Operation(host=host, kind="storage.pool.create", params={})
    runner = Runner(None)
    plain = storage_env / "plain.img"
    plain.write_bytes(b"\0" * 4096)
    with pytest.raises(ServiceError, match="does not exist on host testhost"):
        _check_blank(op, runner, "/dev/loop-does-not-exist")
    with pytest.raises(ServiceError, match="not a block device \\(it is a regular file\\)"):
        _check_blank(op, runner, str(plain))

    image = storage_env / "disk.img"
    sh("truncate", "-s", "300M", str(image))
    device = sh("losetup", "--find", "--show", str(image)).stdout.strip()
    _check_blank(op, runner, device)  # blank: accepted
    sh("mkfs.btrfs", "-q", device)
    target = storage_env / "mnt"
    target.mkdir()
    sh("mount", device, str(target))
    with pytest.raises(ServiceError, match=f"is mounted at {target}; nothing was done"):
        _check_blank(op, runner, device)
    sh("umount", str(target))
    with pytest.raises(ServiceError, match="holds btrfs data and wiping it was not confirmed"):
        _check_blank(op, runner, device)
    op.params = {"wipe": True}
    _check_blank(op, runner, device)  # confirmed: accepted
    assert sh("blkid", "-p", "-o", "value", "-s", "TYPE", device).stdout.strip() == "btrfs", "a check wrote"
