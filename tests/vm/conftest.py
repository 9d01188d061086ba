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

import os
import shlex
import shutil
import tempfile
from pathlib import Path

import pytest

from storage.drivers.lvm import LvmDriver
from tests.hosttools import missing
from tests.vm.transport import (
    VmRunner,
    VmShare,
    debian_kernel,
    initrd_with_files,
    make_disk,
    module_load_order,
)

QEMU = "qemu-system-x86_64"
DISK_BYTES = 1024**3  # /dev/vda: LVM
SECOND_DISK_BYTES = 512 * 1024**2  # /dev/vdb: a whole-disk zpool, with udev running
MEMORY_MB = 1536
# Generous but bounded: a shell answers after ~10-70 s on the 2-core machines (TCG).
BOOT_TIMEOUT = float(os.environ.get("CONSOLE_VM_BOOT_TIMEOUT", "600"))
# What the initramfs needs to mount this host's tree; everything else comes from that tree.
INITRD_MODULES = ["9pnet_virtio", "9p", "overlay"]
NEWROOT = "/newroot"


def _boot_lines(modules: list[str], share: str) -> list[str]:
    insmod = [
        f"[ -d /sys/module/{Path(m).name.split('.ko')[0].replace('-', '_')} ] || insmod /console-vm/{m}"
        for m in modules
    ]
    mnt = f"{NEWROOT}{share}"
    return [
        "mkdir -p /proc /sys /dev /run /host /ovl " + NEWROOT,
        "mount -t proc proc /proc",
        "mount -t sysfs sys /sys",
        "mount -t devtmpfs dev /dev",
        # Kernel messages on the serial console would land in the middle of command output.
        "echo 1 > /proc/sys/kernel/printk",
        "modprobe virtio_pci",
        "modprobe virtio_blk",
        *insmod,
        "i=0; while [ ! -b /dev/vdb ] && [ $i -lt 60 ]; do sleep 1; i=$((i+1)); done; [ -b /dev/vdb ]",
        "mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000 hostroot /host",
        "mount -t tmpfs tmpfs /ovl && mkdir -p /ovl/upper /ovl/work",
        f"mount -t overlay overlay -o lowerdir=/host,upperdir=/ovl/upper,workdir=/ovl/work {NEWROOT}",
        f"mount -t proc proc {NEWROOT}/proc && mount -t sysfs sys {NEWROOT}/sys",
        f"mount -t devtmpfs dev {NEWROOT}/dev && mount -t tmpfs tmpfs {NEWROOT}/run",
        f"mount -t tmpfs tmpfs {NEWROOT}/tmp && chmod 1777 {NEWROOT}/tmp",
        f"mkdir -p {shlex.quote(mnt)} && mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 "
        f"scratch {shlex.quote(mnt)}",
        # No udev in the VM (HOST-NOTES.md): LVM must not wait for it.
        f"mkdir -p {NEWROOT}/run/lvm {NEWROOT}/run/lock/lvm && "
        "printf 'activation {\\n\\tudev_sync = 0\\n\\tudev_rules = 0\\n\\tverify_udev_operations = 1\\n}\\n'"
        f" > {NEWROOT}/etc/lvm/lvm.conf",
    ]


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


def boot_host_system(boot: Path, share: Path, disks: list[Path], *, network: bool = False) -> VmRunner:
    """Boot Debian's kernel in QEMU with this host's system chrooted (see the module's docstring)
    and ``share`` mounted read-write at its own path; ``disks`` are /dev/vda, /dev/vdb... (two:
    the boot waits for /dev/vdb). The initrd goes to ``boot``. With ``network``, a virtio NIC on
    QEMU's user networking (the caller configures it in the VM). The caller closes the runner."""
    if shutil.which(QEMU) is None:
        missing(f"{QEMU} is not installed (Debian package qemu-system-x86)")
    found = debian_kernel()
    if found is None:
        missing("no /boot/vmlinuz-* with its initrd (Debian package linux-image-amd64)")
    kernel, initrd = found
    version = kernel.rsplit("/vmlinuz-", 1)[1]
    if not Path("/lib/modules", version, "modules.dep").is_file():
        missing(f"the modules of {version} are not installed (Debian package linux-image-amd64)")
    modules = module_load_order(version, INITRD_MODULES)
    initrd_path = initrd_with_files(
        initrd,
        {f"console-vm/{m}": f"/lib/modules/{version}/{m}" for m in modules},
        boot / "initrd.img",
    )
    runner = VmRunner(
        kernel=kernel,
        initrd=str(initrd_path),
        disk=str(disks[0]),
        memory_mb=MEMORY_MB,
        default_timeout=180,
        transcript=os.environ.get("CONSOLE_VM_TRANSCRIPT") or None,
        shares=[VmShare("/", "hostroot"), VmShare(str(share), "scratch", readonly=False)],
        extra_disks=[str(d) for d in disks[1:]],
        network=network,
    )
    try:
        runner.start(boot_timeout=BOOT_TIMEOUT)
        for line in _boot_lines(modules, str(share)):
            runner.shell(line, timeout=120)
        runner.enter_root(NEWROOT)
        runner.shell("modprobe dm-mod && modprobe dm-snapshot && modprobe ext4", timeout=120)
    except BaseException:
        runner.close()
        raise
    return runner


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
