"""Containers on LVM and ZFS pools: refused clearly where the kernel lacks them (this host), and
the exact ``lxc-create`` argv where it has them (tested at the command boundary: neither LVM
logical volumes nor ZFS run on this kernel)."""

from __future__ import annotations

import pytest

from console.errors import InvalidInput
from console.models import AuditEvent, Host, Operation
from console.operations import RequestContext
from containers import services
from containers.drivers.lxc import LxcDriver
from storage.models import Pool
from tests.scripted_runner import ScriptedRunner

CTX = RequestContext(ip="127.0.0.1", request_id="block-store")


@pytest.fixture
def pools(db):
    def make(caps: dict) -> tuple[Host, Pool, Pool]:
        host = Host.objects.create(
            slug="blk",
            name="blk",
            lxc_path="/var/lib/lxc",
            extra_lxc_paths=["/srv/pools/vg1", "/srv/pools/tank"],
            capabilities={"lxc": {"templates": ["busybox"]}, **caps},
        )
        lvm = Pool.objects.create(host=host, name="vg1", kind="lvm", lxc_path="/srv/pools/vg1", vg_name="lxc")
        zfs = Pool.objects.create(host=host, name="tank", kind="zfs", lxc_path="/srv/pools/tank")
        return host, lvm, zfs

    return make


def test_this_kernel_refuses_lvm_and_zfs_containers_with_the_reason(pools, admin):
    host, lvm, zfs = pools({"lvm": {"available": True, "device_mapper": False}, "zfs": {"available": False}})
    with pytest.raises(InvalidInput, match="no device-mapper"):
        services.create_container(actor=admin, ctx=CTX, host=host, name="c1", lxc_path=lvm.lxc_path)
    with pytest.raises(InvalidInput, match="has no ZFS"):
        services.create_container(actor=admin, ctx=CTX, host=host, name="c2", lxc_path=zfs.lxc_path)
    assert Operation.objects.count() == 0
    assert AuditEvent.objects.filter(result="refused", action="container.create").count() == 2


def test_where_the_kernel_has_them_the_pool_decides_the_store(pools, admin):
    host, lvm, zfs = pools(
        {"lvm": {"available": True, "device_mapper": True}, "zfs": {"available": True, "kernel": True}}
    )
    op = services.create_container(
        actor=admin, ctx=CTX, host=host, name="c1", lxc_path=lvm.lxc_path, fssize="10g"
    )
    assert (
        op.params["backing_store"] == "lvm" and op.params["vgname"] == "lxc" and op.params["fssize"] == "10G"
    )
    op = services.create_container(actor=admin, ctx=CTX, host=host, name="c2", lxc_path=zfs.lxc_path)
    assert op.params["backing_store"] == "zfs" and op.params["zfsroot"] == "tank"
    for bad in ("0G", "10T", "32M", "1.5G", "10G;id", "-1G"):
        with pytest.raises(InvalidInput, match="64M or more"):
            services.create_container(
                actor=admin, ctx=CTX, host=host, name=f"x{len(bad)}", lxc_path=lvm.lxc_path, fssize=bad
            )
    with pytest.raises(InvalidInput, match="not the LXC path of a lvm pool"):
        services.create_container(actor=admin, ctx=CTX, host=host, name="c3", backing_store="lvm")


def plays_lxc_create(lxc_path):
    """The script of the command boundary: lxc-create writes its config."""

    def script(argv):
        if argv[0] == "lxc-create":
            name = argv[argv.index("-n") + 1]
            (lxc_path / name).mkdir()
            (lxc_path / name / "config").write_text("lxc.rootfs.path = lvm:/dev/lxc/" + name + "\n")

    return script


def test_lvm_and_zfs_create_argv(tmp_path):
    runner = ScriptedRunner(plays_lxc_create(tmp_path))
    driver = LxcDriver(runner, str(tmp_path))
    driver.create("lvm_container", "busybox", backing_store="lvm", vgname="lxc", fssize="10G")
    driver.create("zfs_container", "busybox", backing_store="zfs", zfsroot="lxc")
    assert runner.argvs == [
        [
            "lxc-create",
            "-P",
            str(tmp_path),
            "-n",
            "lvm_container",
            "-B",
            "lvm",
            "--vgname",
            "lxc",
            "--fssize",
            "10G",
            "--fstype",
            "ext4",
            "-t",
            "busybox",
        ],
        [
            "lxc-create",
            "-P",
            str(tmp_path),
            "-n",
            "zfs_container",
            "-B",
            "zfs",
            "--zfsroot",
            "lxc",
            "-t",
            "busybox",
        ],
    ]
    with pytest.raises(ValueError):
        driver.create("x1", "busybox", backing_store="lvm", vgname="lxc; reboot", fssize="1G")
    with pytest.raises(ValueError):
        driver.create("x2", "busybox", backing_store="zfs", zfsroot="-o mountpoint=/")
