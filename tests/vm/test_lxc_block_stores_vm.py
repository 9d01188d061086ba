"""Containers on LVM and ZFS pools, through the console, with LXC itself running in the VM.

The VM runs this host's own system (tests/vm/conftest.py), so ``lxc-create -B lvm``,
``lxc-copy -s`` and ``lxc-destroy`` are LXC's real commands on a kernel with device-mapper and
ZFS. Each step goes the console's way: the service validates and refuses, writes the
Operation, and the agent's handler (``console.tasks.execute``) runs it with a runner whose
commands go to the VM. The LXC path is a directory both sides see at the same path, so the
driver's own file reads and writes (config, logs) land where LXC looks for them.

What these tests found in LXC: ``lxc-destroy`` of an LVM container whose rootfs has snapshots
removes the snapshots with it (``lvremove -f``), and leaves the snapshot containers pointing at
volumes that are gone. The console's refusal is the only thing in the way, so it is tested here
against real volumes, including snapshots made outside the console (the agent links them by
asking LVM and ZFS for the origin).
"""

from __future__ import annotations

import tempfile

import pytest

from console.choices import OperationStatus
from console.errors import Conflict
from console.models import Host, Operation
from console.operations import RequestContext, start_operation
from console.tasks import execute
from containers import handlers as container_handlers  # noqa: F401 (registers the operation handlers)
from containers import services
from containers.inventory import sync_lxc_path
from containers.models import Container, container_lock_key
from storage import handlers as storage_handlers  # noqa: F401 (registers the operation handlers)
from storage import inventory as storage_inventory
from storage import services as storage_services
from storage.choices import PoolKind
from storage.drivers.lvm import LvmDriver
from storage.drivers.zfs import ZfsDriver
from storage.inventory import refresh_pool
from storage.models import HostStorage, Pool

pytestmark = [pytest.mark.vm, pytest.mark.slow]

CTX = RequestContext(ip="192.0.2.20", request_id="req-vm-lxc")
MiB = 1024**2


@pytest.fixture
def vm_host(db, vm_share, monkeypatch):
    # LXC's DEBUG logs (hook output, the first ERROR) go to temporary files the driver reads
    # back: they must be on the shared directory to be seen on both sides.
    tmp = vm_share / "tmp"
    tmp.mkdir(exist_ok=True)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return Host.objects.create(
        slug="vm",
        name="Debian kernel in QEMU",
        lxc_path=str(vm_share / "lxc-lvm"),
        extra_lxc_paths=[str(vm_share / "lxc-zfs")],
        capabilities={
            "lxc": {"available": True, "version": "5.0.2", "templates": ["busybox"]},
            "lvm": {"available": True, "device_mapper": True},
            "zfs": {"available": True, "kernel": True},
        },
    )


def run(vm, op: Operation) -> Operation:
    """What the host's agent does with a queued operation, with the VM as the host."""
    with vm.bound(op):
        done = execute(op, runner=vm)
    assert done.status in (OperationStatus.SUCCEEDED, OperationStatus.FAILED), done.status
    return done


def ok(vm, op: Operation) -> Operation:
    done = run(vm, op)
    assert done.status == OperationStatus.SUCCEEDED, f"{done.error}\n{done.log}"
    return done


def container(host: Host, path: str, name: str) -> Container:
    return Container.objects.get(host=host, lxc_path=path, name=name)


def lv_table(lvm: LvmDriver, vg: str) -> dict[str, tuple[str, int, str]]:
    return {lv.name: (lv.attr[:1], lv.size, lv.origin) for lv in lvm.lvs(vg)}


def test_lvm_pool_container_snapshot_refusal_and_safe_destroy(vm, admin, vm_host, vm_share, settings):
    lvm = LvmDriver(vm)
    settings.STORAGE_POOL_DIR = str(vm_share / "pools")
    settings.STORAGE_IMAGE_DIR = str(vm_share / "images")
    # The pool, as the Storage page makes it: the agent's inventory of the VM's disks, then
    # pvcreate + vgcreate (default VG "lxc") by the pool handler.
    storage_inventory.sync_host(vm_host, vm)
    op = storage_services.create_pool(
        actor=admin, ctx=CTX, host=vm_host, name="vglxc", kind="lvm", device="/dev/vda"
    )
    try:
        ok(vm, op)
        pool = Pool.objects.get(host=vm_host, name="vglxc")
        path = pool.lxc_path
        vm_host.refresh_from_db()
        assert path in vm_host.lxc_paths  # offered on the new-container page
        assert (pool.kind, pool.vg_name, pool.source, path) == (
            "lvm",
            "lxc",
            "/dev/vda",
            str(vm_share / "pools/vglxc"),
        )
        assert [vg.name for vg in lvm.vgs()] == ["lxc"]
        # A second pool on the same VG name is refused from the inventory the agent synced.
        with pytest.raises(Conflict, match="a volume group named 'lxc' already exists"):
            storage_services.create_pool(
                actor=admin, ctx=CTX, host=vm_host, name="again", kind="lvm", device="/dev/vdb"
            )
        # Create: the pool decides the store; the size is the user's.
        op = services.create_container(
            actor=admin, ctx=CTX, host=vm_host, name="c1", lxc_path=path, fssize="100M"
        )
        assert op.params["backing_store"] == "lvm" and op.params["vgname"] == "lxc", op.params
        ok(vm, op)
        [create] = [
            c["argv"] for c in Operation.objects.get(pk=op.pk).commands if c["argv"][0] == "lxc-create"
        ]
        assert create[create.index("-B") :][:7] == [
            "-B",
            "lvm",
            "--vgname",
            "lxc",
            "--fssize",
            "100M",
            "--fstype",
        ]
        c1 = container(vm_host, path, "c1")
        assert (c1.store, c1.rootfs, c1.state) == ("lvm", "lvm:/dev/lxc/c1", "STOPPED")
        assert lv_table(lvm, "lxc") == {"c1": ("-", 100 * MiB, "")}
        # The busybox template filled the logical volume (mounted in the VM, ext4).
        listing = vm.run(
            ["debugfs", "-R", "ls -p /bin", "/dev/lxc/c1"], env={"DEBUGFS_PAGER": "__none__"}
        ).stdout
        assert "/busybox/" in listing, listing

        # Snapshot: lxc-copy -s makes a snapshot LV whose origin is c1's volume.
        op = services.copy_container(actor=admin, ctx=CTX, container=c1, new_name="c1snap", snapshot=True)
        result = ok(vm, op).result
        assert result["store"] == "lvm" and result["kind"] == "snapshot", result
        table = lv_table(lvm, "lxc")
        assert table["c1"][0] == "o" and table["c1snap"][0] == "s" and table["c1snap"][2] == "c1", table
        snap = container(vm_host, path, "c1snap")
        assert (snap.rootfs, snap.origin_id, snap.origin_kind) == ("lvm:/dev/lxc/c1snap", c1.pk, "snapshot")

        # A full copy when asked: a new volume of its own, no origin, the files copied.
        result = ok(
            vm, services.copy_container(actor=admin, ctx=CTX, container=c1, new_name="c1full", snapshot=False)
        ).result
        assert result["kind"] == "copy", result
        table = lv_table(lvm, "lxc")
        assert table["c1full"] == ("-", 100 * MiB, ""), table
        full = container(vm_host, path, "c1full")
        assert (full.rootfs, full.origin_id, full.origin_kind) == ("lvm:/dev/lxc/c1full", c1.pk, "copy")
        listing = vm.run(
            ["debugfs", "-R", "ls -p /bin", "/dev/lxc/c1full"], env={"DEBUGFS_PAGER": "__none__"}
        ).stdout
        assert "/busybox/" in listing, listing

        # The pool page's reading: the origin and its snapshot, as lvs says.
        refresh_pool(pool, vm)
        pool.refresh_from_db()
        assert pool.health == "ok" and pool.capacity_bytes > 900 * MiB, pool.health
        assert {r["name"]: r["origin"] for r in pool.details["lvs"]} == {
            "c1": "",
            "c1snap": "c1",
            "c1full": "",
        }

        # Destroying the origin is refused before anything runs (LXC would take the snapshot with it).
        before = Operation.objects.count()
        with pytest.raises(Conflict, match="c1snap"):
            services.destroy_container(actor=admin, ctx=CTX, container=c1)
        assert Operation.objects.count() == before
        assert set(lv_table(lvm, "lxc")) == {"c1", "c1snap", "c1full"}

        # A snapshot made outside the console is linked by the agent: LVM names its origin.
        Container.objects.filter(pk=snap.pk).update(origin=None, origin_kind="")
        sync_lxc_path(vm_host, path, vm)
        assert container(vm_host, path, "c1snap").origin_id == c1.pk
        with pytest.raises(Conflict, match="c1snap"):
            services.destroy_container(actor=admin, ctx=CTX, container=c1)

        # The pool cannot go while they live there: the page lists them, snapshots first.
        with pytest.raises(Conflict) as refused:
            storage_services.destroy_pool(
                actor=admin, ctx=CTX, pool=Pool.objects.get(pk=pool.pk), confirm="vglxc"
            )
        message = refused.value.message
        assert message.index("destroy the snapshot c1snap") < message.index("destroy the container c1 "), (
            message
        )
        assert "lvremove" not in message, "a container's own volume goes with lxc-destroy: " + message

        # The safe order: the snapshot, then the origin (the full copy is independent of both).
        ok(vm, services.destroy_container(actor=admin, ctx=CTX, container=container(vm_host, path, "c1snap")))
        assert set(lv_table(lvm, "lxc")) == {"c1", "c1full"}
        ok(vm, services.destroy_container(actor=admin, ctx=CTX, container=container(vm_host, path, "c1")))
        assert set(lv_table(lvm, "lxc")) == {"c1full"}
        ok(vm, services.destroy_container(actor=admin, ctx=CTX, container=container(vm_host, path, "c1full")))
        assert lvm.lvs("lxc") == [] and not Container.objects.filter(host=vm_host).exists()

        # The pool goes too, through the page's path: vgremove, pvremove, its LXC path dropped.
        refresh_pool(pool, vm)
        ok(
            vm,
            storage_services.destroy_pool(
                actor=admin, ctx=CTX, pool=Pool.objects.get(pk=pool.pk), confirm="vglxc"
            ),
        )
        assert lvm.vgs() == [] and [pv.name for pv in lvm.pvs()] == []
        vm_host.refresh_from_db()
        assert path not in vm_host.lxc_paths and not Pool.objects.filter(host=vm_host).exists()
    finally:
        pools = vm_share / "pools" / "vglxc"
        for name in ("c1snap", "c1full", "c1"):
            vm.run(["lxc-destroy", "-P", str(pools), "-n", name], check=False)
        if any(vg.name == "lxc" for vg in lvm.vgs()):
            for lv in sorted(lvm.lvs("lxc"), key=lambda lv: not lv.is_snapshot):
                vm.run(["lvremove", "-f", f"lxc/{lv.name}"], check=False)
            lvm.vgremove("lxc")
        if any(pv.name == "/dev/vda" for pv in lvm.pvs()):
            lvm.pvremove("/dev/vda")


@pytest.fixture
def zpool(vm_zfs):
    vm = vm_zfs
    vm.shell("truncate -s 300M /tmp/lxc-pool.img")
    zfs = ZfsDriver(vm)
    zfs.create_pool("lxc", ["/tmp/lxc-pool.img"], mountpoint="/lxc")
    try:
        yield zfs
    finally:
        if any(p.name == "lxc" for p in zfs.list_pools()):
            vm.run(["zpool", "destroy", "-f", "lxc"], check=False)
        vm.shell("rm -f /tmp/lxc-pool.img")


@pytest.mark.vm_zfs
def test_zfs_pool_container_clone_refusals_and_safe_destroy(vm, admin, vm_host, zpool):
    path = vm_host.extra_lxc_paths[0]
    # The agent's storage sync sees the zpool, so a second pool of that name is refused.
    storage_inventory.sync_host(vm_host, vm)
    assert HostStorage.objects.get(host=vm_host).zpools == ["lxc"]
    with pytest.raises(Conflict, match="a ZFS pool named 'lxc' already exists"):
        storage_services.create_pool(
            actor=admin, ctx=CTX, host=vm_host, name="lxc", kind="zfs", device="/dev/vda"
        )

    pool = Pool.objects.create(
        host=vm_host, name="lxc", kind=PoolKind.ZFS, source="/tmp/lxc-pool.img", zpool="lxc", lxc_path=path
    )

    op = services.create_container(actor=admin, ctx=CTX, host=vm_host, name="z1", lxc_path=path)
    assert (op.params["backing_store"], op.params["zfsroot"]) == ("zfs", "lxc"), op.params
    ok(vm, op)
    z1 = container(vm_host, path, "z1")
    assert (z1.store, z1.rootfs) == ("zfs", "zfs:lxc/z1")
    mounted = {d.name: d.mountpoint for d in zpool.datasets("lxc")}
    assert mounted["lxc/z1"] == f"{path}/z1/rootfs", mounted

    ok(vm, services.copy_container(actor=admin, ctx=CTX, container=z1, new_name="z1snap", snapshot=True))
    assert zpool.origins("lxc")["lxc/z1snap"] == "lxc/z1@z1snap"
    snap = container(vm_host, path, "z1snap")
    assert (snap.rootfs, snap.origin_id, snap.origin_kind) == ("zfs:lxc/z1snap", z1.pk, "snapshot")

    # A full copy when asked: a dataset of its own, not a clone.
    result = ok(
        vm, services.copy_container(actor=admin, ctx=CTX, container=z1, new_name="z1full", snapshot=False)
    ).result
    assert result["kind"] == "copy", result
    assert zpool.origins("lxc")["lxc/z1full"] == ""
    assert container(vm_host, path, "z1full").rootfs == "zfs:lxc/z1full"
    # The files came along: it refers to as much data as the original (LXC mounts it only to run).
    refer = {d.name: d.refer for d in zpool.datasets("lxc")}
    assert refer["lxc/z1full"] > 1024**2 and refer["lxc/z1full"] >= refer["lxc/z1"] * 0.9, refer

    # The pool page: the dataset, its snapshot and the clone with its origin.
    refresh_pool(pool, vm)
    pool.refresh_from_db()
    kinds = {d["name"]: (d["snapshot"], d["origin"]) for d in pool.details["datasets"]}
    assert kinds == {
        "lxc": (False, ""),
        "lxc/z1": (False, ""),
        "lxc/z1@z1snap": (True, ""),
        "lxc/z1snap": (False, "lxc/z1@z1snap"),
        "lxc/z1full": (False, ""),
    }, kinds
    assert pool.health == "ok" and pool.details["status"][0]["state"] == "ONLINE"
    assert pool.capacity_bytes > 200 * MiB

    # The console refuses the origin; and were it bypassed, LXC's own refusal fails the
    # operation with ZFS's words, destroys nothing and releases the lock.
    with pytest.raises(Conflict, match="z1snap"):
        services.destroy_container(actor=admin, ctx=CTX, container=z1)
    bypass = start_operation(
        actor=admin,
        ctx=CTX,
        host=vm_host,
        kind="container.destroy",
        target="container vm/z1",
        lock_key=container_lock_key("vm", path, "z1"),
        params={"name": "z1", "lxc_path": path, "stop_first": False},
    )
    failed = run(vm, bypass)
    assert failed.status == OperationStatus.FAILED and "dependent clones" in failed.error, failed.error
    assert sorted(zpool.origins("lxc")) == ["lxc", "lxc/z1", "lxc/z1@z1snap", "lxc/z1full", "lxc/z1snap"]
    assert container(vm_host, path, "z1").pk == z1.pk

    # Linked again after the fact from ZFS's origin property.
    Container.objects.filter(pk=snap.pk).update(origin=None, origin_kind="")
    sync_lxc_path(vm_host, path, vm)
    assert container(vm_host, path, "z1snap").origin_id == z1.pk

    ok(vm, services.destroy_container(actor=admin, ctx=CTX, container=container(vm_host, path, "z1snap")))
    ok(vm, services.destroy_container(actor=admin, ctx=CTX, container=container(vm_host, path, "z1")))
    assert sorted(zpool.origins("lxc")) == ["lxc", "lxc/z1full"]
    ok(vm, services.destroy_container(actor=admin, ctx=CTX, container=container(vm_host, path, "z1full")))
    assert sorted(zpool.origins("lxc")) == ["lxc"]
    assert not Container.objects.filter(host=vm_host).exists()


@pytest.mark.vm_zfs
def test_zfs_pool_made_used_and_taken_apart_through_the_console(
    vm, vm_zfs, vm_udev, admin, vm_host, vm_share, settings
):
    """The Storage page's path for a ZFS pool, on a whole disk of the VM (/dev/vdb).

    (Containers on a ZFS pool are the test above: here the pool is mounted on its LXC path inside
    the VM, over the directory the two sides share, so this host would not see their files.)"""
    settings.STORAGE_POOL_DIR = str(vm_share / "pools")
    settings.STORAGE_IMAGE_DIR = str(vm_share / "images")
    zfs = ZfsDriver(vm)
    storage_inventory.sync_host(vm_host, vm)
    disk = HostStorage.objects.get(host=vm_host).block_device("/dev/vdb")
    assert disk is not None and (disk["type"], disk["size"]) == ("disk", 512 * MiB), disk
    try:
        op = storage_services.create_pool(
            actor=admin, ctx=CTX, host=vm_host, name="tank", kind="zfs", device="/dev/vdb"
        )
        ok(vm, op)
        pool = Pool.objects.get(host=vm_host, name="tank")
        assert (pool.kind, pool.zpool, pool.lxc_path) == ("zfs", "tank", str(vm_share / "pools" / "tank"))
        vm_host.refresh_from_db()
        assert pool.lxc_path in vm_host.lxc_paths
        [zp] = [p for p in zfs.list_pools() if p.name == "tank"]
        assert zp.health == "ONLINE" and 400 * MiB < zp.size <= 512 * MiB, zp
        # The agent's own re-check refuses what the page could not know: the disk is in the pool now.
        assert HostStorage.objects.get(host=vm_host).zpools == ["tank"]

        # A dataset made outside the console: the page lists it once read, and the agent refuses
        # on its own even when the page had not seen it (zpool destroy would take it along).
        vm.run(["zfs", "create", "tank/stray"])
        vm.run(["zfs", "snapshot", "tank/stray@keep"])
        bypass = start_operation(
            actor=admin,
            ctx=CTX,
            host=vm_host,
            kind="storage.pool.destroy",
            target=pool.target,
            lock_key=pool.lock_key,
            params={"pool_id": pool.pk, "name": "tank"},
        )
        failed = run(vm, bypass)
        assert failed.status == OperationStatus.FAILED, failed.log
        assert "safe order: zfs destroy tank/stray@keep; zfs destroy tank/stray" in failed.error, failed.error
        assert [p.name for p in zfs.list_pools()] == ["tank"]
        refresh_pool(pool, vm)
        with pytest.raises(Conflict, match="tank/stray@keep"):
            storage_services.destroy_pool(
                actor=admin, ctx=CTX, pool=Pool.objects.get(pk=pool.pk), confirm="tank"
            )

        zfs.destroy("tank/stray@keep")
        zfs.destroy("tank/stray")
        refresh_pool(pool, vm)
        ok(
            vm,
            storage_services.destroy_pool(
                actor=admin, ctx=CTX, pool=Pool.objects.get(pk=pool.pk), confirm="tank"
            ),
        )
        assert zfs.list_pools() == [] and not Pool.objects.filter(pk=pool.pk).exists()
        vm_host.refresh_from_db()
        assert pool.lxc_path not in vm_host.lxc_paths
    finally:
        if any(p.name == "tank" for p in zfs.list_pools()):
            vm.run(["zpool", "destroy", "-f", "tank"], check=False)
