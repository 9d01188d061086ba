"""LVM logical volumes and ZFS cannot run on this kernel: their drivers are tested at the argv
boundary (the exact commands they would run) and with the seed's real outputs as answers."""

from __future__ import annotations

import pytest

from console.runner import CommandError, CommandResult
from storage.drivers.lvm import LVM_ENV, LvmDriver
from storage.drivers.zfs import ZfsDriver
from tests.scripted_runner import ScriptedRunner
from tests.storage.conftest import fixture_text


def test_lvm_logical_volume_commands():
    # lvremove first asks lvs whether the volume is an origin (here: a VG without volumes).
    lvs_empty = CommandResult(["lvs"], 0, fixture_text("host_lvs_empty.json"), "", 0.0)
    runner = ScriptedRunner({"lvs": lvs_empty})
    lvm = LvmDriver(runner)
    lvm.lvcreate("lxc", "lvm_container", 10 * 1024**3)
    lvm.lvremove("lxc", "container_2_copy")
    assert [a for a in runner.argvs if a[0] != "lvs"] == [
        ["lvcreate", "-W", "y", "--yes", "-L", "10737418240b", "-n", "lvm_container", "lxc"],
        ["lvremove", "-y", "lxc/container_2_copy"],
    ]
    assert runner.argvs[1][0] == "lvs" and "lxc" in runner.argvs[1]
    assert lvm.snapshot_argv("lxc", "lvm_container_2", "container_2_copy", 5 * 1024**3) == [
        "lvcreate",
        "-s",
        "-L",
        "5368709120b",
        "-n",
        "container_2_copy",
        "lxc/lvm_container_2",
    ]
    # Every LVM command runs with the fd-leak warnings silenced.
    assert all(kwargs["env"] == LVM_ENV for _, kwargs in runner.calls)


def test_lvm_pool_commands_never_force():
    runner = ScriptedRunner()
    lvm = LvmDriver(runner)
    lvm.pvcreate("/dev/loop0")
    lvm.vgcreate("lxc", ["/dev/loop0"])
    lvm.vgremove("lxc")
    lvm.pvremove("/dev/loop0")
    assert runner.argvs == [
        ["pvcreate", "/dev/loop0"],
        ["vgcreate", "lxc", "/dev/loop0"],
        ["vgremove", "lxc"],  # no -f: a VG with logical volumes is refused by LVM too
        ["pvremove", "/dev/loop0"],
    ]


def test_lvcreate_failure_without_device_mapper_is_reported():
    stderr = fixture_text("host_lvcreate_no_dm.stderr")
    runner = ScriptedRunner({"lvcreate": CommandResult(["lvcreate"], 5, "", stderr, 0.1)})
    with pytest.raises(CommandError) as info:
        LvmDriver(runner).lvcreate("lxc", "x", 20 * 1024**2)
    assert "device-mapper" in info.value.stderr and info.value.message == "lvcreate could not create x"


def test_zfs_pool_commands():
    runner = ScriptedRunner()
    zfs = ZfsDriver(runner)
    zfs.create_pool("lxc", ["/dev/loop0"], mountpoint="/lxc")
    zfs.destroy_pool("lxc")
    assert runner.argvs == [
        ["zpool", "create", "-m", "/lxc", "lxc", "/dev/loop0"],
        ["zpool", "destroy", "lxc"],
    ]
    assert zfs.zfs_promote_argv("lxc/zfs_cow_clone") == ["zfs", "promote", "lxc/zfs_cow_clone"]
    with pytest.raises(ValueError):
        zfs.zfs_destroy_argv("-r lxc")


def test_zfs_destroy_with_children_is_refused_with_the_safe_order():
    stderr = fixture_text("seed_zfs_destroy_has_children.txt")
    runner = ScriptedRunner({"zfs": CommandResult(["zfs"], 1, "", stderr, 0.1)})
    with pytest.raises(CommandError) as info:
        ZfsDriver(runner).destroy("lxc/zfs_container")
    assert runner.argvs[0] == ["zfs", "destroy", "lxc/zfs_container"]  # never -r
    assert not any("-r" in argv[:3] or "-R" in argv[:3] for argv in runner.argvs if argv[1] == "destroy")
    message = info.value.message
    assert "lxc/zfs_container has dependants: lxc/zfs_container@zfs_cow_clone" in message
    assert "zfs destroy lxc/zfs_container@zfs_cow_clone; zfs destroy lxc/zfs_container" in message
    assert "zfs promote" in message


def test_zfs_listing_parses_real_outputs():
    runner = ScriptedRunner(
        {
            "zpool": CommandResult(["zpool"], 0, fixture_text("seed_zpool_list.txt"), "", 0.1),
            "zfs": CommandResult(["zfs"], 0, fixture_text("seed_zfs_list.txt"), "", 0.1),
        }
    )
    zfs = ZfsDriver(runner)
    assert [p.name for p in zfs.list_pools()] == ["lxc"]
    assert [d.mountpoint for d in zfs.datasets()] == ["/lxc"]
    assert runner.argvs == [["zpool", "list"], ["zfs", "list"]]


def test_zfs_destroy_gives_the_complete_order_with_clones_first():
    """The refusal names the snapshot only; the driver's listing adds the clone that depends on it.

    The listing's shape (``zfs list -H -t all -o name,origin -r``: tab-separated, ``-`` for no
    origin) is what the VM tier's ZFS (``make vm-zfs``) prints for the seed's layout.
    """
    listing = (
        "lxc\t-\n"
        "lxc/zfs_container\t-\n"
        "lxc/zfs_container@zfs_cow_clone\t-\n"
        "lxc/zfs_cow_clone\tlxc/zfs_container@zfs_cow_clone\n"
        "lxc/zfs_cow_clone@later\t-\n"
        "lxc/grandchild\tlxc/zfs_cow_clone@later\n"
    )
    stderr = fixture_text("seed_zfs_destroy_has_children.txt")

    def script(argv):
        if argv[:2] == ["zfs", "list"]:
            return CommandResult(list(argv), 0, listing, "", 0.0)
        return CommandResult(list(argv), 1, "", stderr, 0.0)

    runner = ScriptedRunner(script)
    zfs = ZfsDriver(runner)
    assert zfs.safe_order("lxc/zfs_container") == [
        "lxc/grandchild",
        "lxc/zfs_cow_clone@later",
        "lxc/zfs_cow_clone",
        "lxc/zfs_container@zfs_cow_clone",
        "lxc/zfs_container",
    ]
    with pytest.raises(CommandError) as info:
        zfs.destroy("lxc/zfs_container")
    assert (
        "safe order: zfs destroy lxc/grandchild; zfs destroy lxc/zfs_cow_clone@later; "
        "zfs destroy lxc/zfs_cow_clone; zfs destroy lxc/zfs_container@zfs_cow_clone; "
        "zfs destroy lxc/zfs_container" in info.value.message
    )
    assert ["zfs", "list", "-H", "-t", "all", "-o", "name,origin", "-r", "lxc"] in runner.argvs
    assert zfs.zfs_clone_argv("lxc/a@s", "lxc/b") == ["zfs", "clone", "lxc/a@s", "lxc/b"]
    with pytest.raises(ValueError):
        zfs.zfs_snapshot_argv("lxc/no-at-sign")
    with pytest.raises(ValueError):
        zfs.zfs_create_argv("-o mountpoint=/")
