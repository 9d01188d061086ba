"""ZFS for real, in the same VM (marker ``vm_zfs``: the part of the VM tier that needs ZFS).

Needs zfs.ko built for the VM's kernel (Debian ``contrib``: zfs-dkms, 5-12 min of DKMS on 2
cores, once): ``make test`` runs ``scripts/vm-zfs-deps`` first.

The ZFS driver builds the argv of the pool, the listings and every destroy, and parses the
output. Here the datasets, snapshot and clone are made with the ``zfs create``/``snapshot``/
``clone`` commands LXC runs for ``-B zfs``; test_lxc_block_stores_vm.py runs LXC itself.
"""

from __future__ import annotations

import pytest

from console.runner import CommandError
from storage.drivers.zfs import ZfsDriver, parse_destroy_error

pytestmark = [pytest.mark.vm, pytest.mark.vm_zfs, pytest.mark.slow]

POOL = "lxc"
VDEV = "/tmp/pool.img"  # a whole /dev/vda fails without udev ("failed to detect device partitions")


@pytest.fixture(scope="module")
def zfs(vm_zfs):
    vm = vm_zfs
    vm.shell(f"truncate -s 300M {VDEV}")
    driver = ZfsDriver(vm)
    try:
        yield driver
    finally:
        if any(p.name == POOL for p in driver.list_pools()):
            driver.destroy_pool(POOL)
        vm.shell(f"rm -f {VDEV}")


def lxc_zfs(vm, *argv: str) -> None:
    """The commands LXC runs for ``-B zfs`` (create) and ``lxc-copy -s`` (snapshot + clone)."""
    vm.run(["zfs", *argv])


def names(zfs) -> list[str]:
    return sorted(d.name for d in zfs.datasets())


def test_zfs_pool_dataset_snapshot_clone_and_safe_destroy(vm, zfs):
    zfs.create_pool(POOL, [VDEV], mountpoint="/lxc")
    [pool] = zfs.list_pools()
    assert (pool.name, pool.health) == (POOL, "ONLINE") and pool.size > 200 * 1024**2, pool
    [status] = zfs.status()
    assert status.pool == POOL and status.state == "ONLINE", status
    [root] = zfs.datasets()
    assert (root.name, root.mountpoint) == (POOL, "/lxc"), root

    # A container's dataset and the seed's copy-on-write clone of it, by the driver's own commands.
    zfs.create_dataset("lxc/zfs_container")
    snapshot = zfs.snapshot_and_clone("lxc/zfs_container", "lxc/zfs_cow_clone", "zfs_cow_clone")
    assert snapshot == "lxc/zfs_container@zfs_cow_clone"
    assert names(zfs) == ["lxc", "lxc/zfs_container", "lxc/zfs_cow_clone"]
    # The driver's listing of origins, on live output, gives the complete order at once.
    assert zfs.origins("lxc")["lxc/zfs_cow_clone"] == "lxc/zfs_container@zfs_cow_clone"
    assert zfs.safe_order("lxc/zfs_container") == [
        "lxc/zfs_cow_clone",
        "lxc/zfs_container@zfs_cow_clone",
        "lxc/zfs_container",
    ]

    # The origin is refused with the seed's exact error, read into its dependants and safe order.
    with pytest.raises(CommandError) as info:
        zfs.destroy("lxc/zfs_container")
    assert "cannot destroy 'lxc/zfs_container': filesystem has children" in info.value.stderr
    blocked = parse_destroy_error(info.value.stderr)
    assert blocked is not None and blocked.children == ["lxc/zfs_container@zfs_cow_clone"], info.value.stderr
    assert info.value.message.startswith(
        "lxc/zfs_container has dependants: lxc/zfs_container@zfs_cow_clone; safe order: "
        "zfs destroy lxc/zfs_cow_clone; zfs destroy lxc/zfs_container@zfs_cow_clone; "
        "zfs destroy lxc/zfs_container"
    ), info.value.message
    # Its first step is refused in turn: the snapshot has the clone; that refusal names it.
    with pytest.raises(CommandError) as info:
        zfs.destroy("lxc/zfs_container@zfs_cow_clone")
    assert "snapshot has dependent clones" in info.value.stderr, info.value.stderr
    assert info.value.message.startswith("lxc/zfs_container@zfs_cow_clone has dependants: lxc/zfs_cow_clone")
    assert names(zfs) == ["lxc", "lxc/zfs_container", "lxc/zfs_cow_clone"], "a refusal destroyed something"

    # The safe order: the clone, the snapshot, then the container's dataset; then the pool.
    zfs.destroy("lxc/zfs_cow_clone")
    zfs.destroy("lxc/zfs_container@zfs_cow_clone")
    zfs.destroy("lxc/zfs_container")
    assert names(zfs) == ["lxc"]
    zfs.destroy_pool(POOL)
    assert zfs.list_pools() == []


def test_zfs_promote_keeps_the_clone_when_the_origin_goes(vm, zfs):
    """The alternative the refusal offers: promote the clone, then destroy the origin."""
    zfs.create_pool(POOL, [VDEV], mountpoint="/lxc")
    lxc_zfs(vm, "create", "lxc/zfs_container")
    lxc_zfs(vm, "snapshot", "lxc/zfs_container@zfs_cow_clone")
    lxc_zfs(vm, "clone", "lxc/zfs_container@zfs_cow_clone", "lxc/zfs_cow_clone")
    vm.run(zfs.zfs_promote_argv("lxc/zfs_cow_clone"))
    # The snapshot now belongs to the clone; the former origin has no children left.
    zfs.destroy("lxc/zfs_container")
    assert names(zfs) == ["lxc", "lxc/zfs_cow_clone"]
    zfs.destroy("lxc/zfs_cow_clone@zfs_cow_clone")
    zfs.destroy("lxc/zfs_cow_clone")
    zfs.destroy_pool(POOL)
    assert zfs.list_pools() == []
