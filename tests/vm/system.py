"""Booting this host's own system in a VM (Debian's kernel under QEMU, TCG): what the VM tier's
``vm`` fixture and the VM host test (tests/host/test_vm_host.py) both start. See
tests/vm/conftest.py for how it works."""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

from tests.hosttools import missing
from tests.vm.transport import (
    VmRunner,
    VmShare,
    debian_kernel,
    initrd_with_files,
    module_load_order,
)

QEMU = "qemu-system-x86_64"
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
