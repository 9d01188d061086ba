"""One VM per test session: Debian's kernel under software emulation, with this host's own system
inside it.

This host's root filesystem is exported read-only over virtio-9p; the VM puts a tmpfs overlay
on it and chroots there, so the tools it runs are this host's own: LXC, LVM, ZFS's userland
(and, from ``/lib/modules`` of the kernel it boots, its modules: device-mapper, ext4, ``zfs.ko``
once ``zfs-dkms`` has built it). A scratch directory of this host is exported read-write and
mounted at the same path inside: an LXC path there is one directory for both sides, so the
console's LXC driver reads and writes a container's files here while ``lxc-create -B lvm`` runs
there, on a kernel that has device-mapper.

The set-up lines below are the VM's own boot (mounts, modules, an ``lvm.conf`` for a system
without udev), sent as plain shell lines. Everything after that is the console's code: drivers
build the argv, parsers read the output.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from storage.drivers.lvm import LvmDriver
from tests.hosttools import missing
from tests.vm.system import boot_host_system
from tests.vm.transport import make_disk

DISK_BYTES = 1024**3  # /dev/vda: LVM
SECOND_DISK_BYTES = 512 * 1024**2  # /dev/vdb: a whole-disk zpool, with udev running


@pytest.fixture(scope="session")
def vm_scratch():
    """The directory shared read-write with the VM, at the same path on both sides."""
    workdir = Path(tempfile.mkdtemp(prefix="console-vm-", dir="/var/tmp"))
    try:
        yield workdir
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def vm(vm_scratch):
    """A booted VM running this host's system (chrooted), with blank disks /dev/vda (1 GiB) and
    /dev/vdb (512 MiB).

    QEMU is killed and its files deleted afterwards."""
    boot = vm_scratch / "boot"
    share = vm_scratch / "share"
    boot.mkdir()
    share.mkdir()
    runner = None
    try:
        disks = [make_disk(boot / "disk.img", DISK_BYTES), make_disk(boot / "disk2.img", SECOND_DISK_BYTES)]
        runner = boot_host_system(boot, share, disks)
        yield runner
    finally:
        if runner is not None:
            runner.close()


@pytest.fixture(scope="session")
def vm_share(vm, vm_scratch) -> Path:
    """The read-write directory both sides see at this same path."""
    return vm_scratch / "share"


@pytest.fixture(scope="session")
def vm_zfs(vm):
    """The VM with zfs.ko loaded (from this host's /lib/modules of the VM's kernel) and ZFS's tools."""
    probe = vm.shell("modprobe zfs && command -v zpool zfs", check=False, timeout=120)
    if probe.returncode != 0:
        missing(
            "ZFS is not built for the VM's kernel (zfs-dkms and zfsutils-linux from Debian contrib: "
            f"scripts/vm-zfs-deps): {probe.stderr.strip() or probe.stdout.strip()}"
        )
    return vm


@pytest.fixture
def vm_udev(vm):
    """udev running in the VM for one test (a whole-disk zpool waits for its partition links);
    the rest of the tier runs without it, as HOST-NOTES describes."""
    vm.shell("/lib/systemd/systemd-udevd --daemon", timeout=60)
    try:
        vm.shell("udevadm trigger --action=add && udevadm settle --timeout=60", timeout=120)
        yield vm
    finally:
        vm.shell("udevadm control --exit", timeout=60, check=False)


@pytest.fixture
def lvm(vm):
    return LvmDriver(vm)
