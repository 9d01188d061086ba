"""One VM per test session: Debian's kernel under software emulation, LVM ready inside.

The set-up lines below are the VM's own boot (mounts, modules, an ``lvm.conf`` for a system
without udev, ``pvcreate``... as symlinks to ``lvm`` as on Debian), sent as plain shell lines.
Everything after that is the console's code: drivers build the argv, parsers read the output.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from storage.drivers.lvm import LvmDriver
from storage.vm_transport import VmRunner, debian_kernel, make_disk
from tests.hosttools import missing

QEMU = "qemu-system-x86_64"
DISK_BYTES = 1024**3
# Generous but bounded: a shell answers after ~10-70 s on the 2-core machines (TCG).
BOOT_TIMEOUT = float(os.environ.get("CONSOLE_VM_BOOT_TIMEOUT", "600"))

LVM_TOOLS = "pvcreate pvremove pvs vgcreate vgremove vgs lvcreate lvremove lvs lvdisplay"
VM_SETUP = [
    "mkdir -p /proc /sys /dev /run/lvm /run/lock/lvm /etc/lvm",
    "mount -t proc proc /proc",
    "mount -t sysfs sys /sys",
    "mount -t devtmpfs dev /dev",
    # Kernel messages on the serial console would land in the middle of command output.
    "echo 1 > /proc/sys/kernel/printk",
    "modprobe virtio_pci",
    "modprobe virtio_blk",
    "modprobe dm-mod",
    "modprobe dm-snapshot",
    "i=0; while [ ! -b /dev/vda ] && [ $i -lt 60 ]; do sleep 1; i=$((i+1)); done; [ -b /dev/vda ]",
    # No udev in the VM (HOST-NOTES.md): LVM must not wait for it.
    "printf 'activation {\\n\\tudev_sync = 0\\n\\tudev_rules = 0\\n\\tverify_udev_operations = 1\\n}\\n'"
    " > /etc/lvm/lvm.conf",
    f"for t in {LVM_TOOLS}; do ln -sf lvm /sbin/$t; done",
]


@pytest.fixture(scope="session")
def vm():
    """A booted VM with a blank 1 GiB /dev/vda; QEMU is killed and the disk deleted afterwards."""
    if shutil.which(QEMU) is None:
        missing(f"{QEMU} is not installed (Debian package qemu-system-x86)")
    found = debian_kernel()
    if found is None:
        missing("no /boot/vmlinuz-* with its initrd (Debian package linux-image-amd64)")
    kernel, initrd = found
    workdir = Path(tempfile.mkdtemp(prefix="console-vm-"))
    runner = None
    try:
        disk = make_disk(workdir / "disk.img", DISK_BYTES)
        runner = VmRunner(
            kernel=kernel,
            initrd=initrd,
            disk=str(disk),
            default_timeout=180,
            transcript=os.environ.get("CONSOLE_VM_TRANSCRIPT") or None,
        )
        runner.start(boot_timeout=BOOT_TIMEOUT)
        for line in VM_SETUP:
            runner.shell(line, timeout=120)
        tools = runner.shell("command -v lvm dmsetup", check=False)
        if tools.returncode != 0:
            pytest.fail(
                f"the initrd {initrd} lacks lvm/dmsetup: install lvm2, then regenerate it "
                f"(update-initramfs -u -k all); got {tools.stdout!r}",
                pytrace=False,
            )
        yield runner
    finally:
        if runner is not None:
            runner.close()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def lvm(vm):
    return LvmDriver(vm)
