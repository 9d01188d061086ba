"""The pieces that boot the VM tier's VM with this host's system: no VM is started here."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.hosttools import missing
from tests.vm.transport import VmRunner, VmShare, initrd_with_files, module_load_order


def test_share_argv_read_only_and_writable():
    assert VmShare("/", "hostroot").argv() == [
        "-virtfs",
        "local,path=/,mount_tag=hostroot,security_model=none,multidevs=remap,readonly=on",
    ]
    assert VmShare("/var/tmp/x", "scratch", readonly=False).argv() == [
        "-virtfs",
        "local,path=/var/tmp/x,mount_tag=scratch,security_model=passthrough,multidevs=remap",
    ]


@pytest.mark.parametrize(
    ("path", "tag"),
    [
        ("/var/tmp/a,readonly=off", "x"),  # a comma would add a QEMU option
        ("relative/dir", "x"),
        ("/tmp/new\nline", "x"),
        ("/tmp", "bad tag"),
        ("/tmp", "t,x"),
        ("/tmp", ""),
    ],
)
def test_share_refuses_what_would_change_qemus_options(path, tag):
    with pytest.raises(ValueError):
        VmShare(path, tag).argv()


def test_runner_puts_the_shares_on_qemus_command_line(tmp_path):
    runner = VmRunner(
        kernel="/boot/k",
        initrd="/boot/i",
        disk=str(tmp_path / "d.img"),
        shares=[VmShare("/", "hostroot"), VmShare(str(tmp_path), "scratch", readonly=False)],
    )
    argv = runner.argv
    assert argv.count("-virtfs") == 2
    assert argv[argv.index("-virtfs") + 1].startswith("local,path=/,mount_tag=hostroot,")
    assert f"local,path={tmp_path},mount_tag=scratch,security_model=passthrough,multidevs=remap" in argv


def test_runner_has_no_network_unless_asked_and_then_only_user_networking(tmp_path):
    """No NIC by default (QEMU would add one of its own); with network=True one virtio NIC on
    QEMU's user networking, which maps the guest's 10.0.2.2 to this machine's loopback."""
    plain = VmRunner(kernel="/boot/k", initrd="/boot/i", disk=str(tmp_path / "d.img")).argv
    assert plain[plain.index("-nic") + 1] == "none" and "-netdev" not in plain
    net = VmRunner(kernel="/boot/k", initrd="/boot/i", disk=str(tmp_path / "d.img"), network=True).argv
    assert "-nic" not in net
    assert net[net.index("-netdev") + 1] == "user,id=n0"
    assert net[net.index("-device") + 1] == "virtio-net-pci,netdev=n0"


def test_module_load_order_puts_dependencies_first(tmp_path):
    version = "9.9.9-test"
    d = tmp_path / "lib/modules" / version
    d.mkdir(parents=True)
    (d / "modules.dep").write_text(
        "kernel/fs/9p/9p.ko: kernel/fs/fscache/fscache.ko kernel/fs/netfs/netfs.ko kernel/net/9p/9pnet.ko\n"
        "kernel/fs/fscache/fscache.ko: kernel/fs/netfs/netfs.ko\n"
        "kernel/fs/netfs/netfs.ko:\n"
        "kernel/net/9p/9pnet.ko:\n"
        "kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio_ring.ko\n"
        "kernel/drivers/virtio/virtio_ring.ko:\n"
        "kernel/drivers/md/dm-mod.ko.xz:\n"
    )
    order = module_load_order(version, ["9pnet_virtio", "9p", "dm_mod"], root=str(tmp_path))
    assert order.index("kernel/net/9p/9pnet.ko") < order.index("kernel/net/9p/9pnet_virtio.ko")
    assert order.index("kernel/fs/netfs/netfs.ko") < order.index("kernel/fs/fscache/fscache.ko")
    assert order.index("kernel/fs/fscache/fscache.ko") < order.index("kernel/fs/9p/9p.ko")
    assert len(order) == len(set(order)) == 7
    assert order[-1] == "kernel/drivers/md/dm-mod.ko.xz"  # dm_mod and dm-mod are one name
    with pytest.raises(ValueError, match="not in"):
        module_load_order(version, ["zfs"], root=str(tmp_path))


def test_module_load_order_of_the_installed_debian_kernel():
    versions = sorted(os.listdir("/lib/modules")) if os.path.isdir("/lib/modules") else []
    versions = [v for v in versions if os.path.isfile(f"/lib/modules/{v}/modules.dep")]
    if not versions:
        missing("no kernel modules installed (Debian package linux-image-amd64)")
    order = module_load_order(versions[-1], ["9pnet_virtio", "9p", "overlay"])
    names = [os.path.basename(p).split(".ko")[0] for p in order]
    assert names.index("9pnet") < names.index("9pnet_virtio") and names.index("9pnet") < names.index("9p")
    assert all(os.path.isfile(f"/lib/modules/{versions[-1]}/{p}") for p in order)


def test_initrd_with_files_is_a_cpio_the_real_tools_read(tmp_path):
    if shutil.which("cpio") is None:
        missing("cpio is not installed")
    base = tmp_path / "base.img"
    base.write_bytes(b"BASE-INITRD-BYTES")
    module = tmp_path / "m.ko"
    module.write_bytes(b"\x7fELF" + bytes(range(256)) * 3 + b"odd")  # not a multiple of 4
    out = initrd_with_files(str(base), {"console-vm/kernel/fs/9p/9p.ko": str(module)}, tmp_path / "out.img")
    data = out.read_bytes()
    assert data.endswith(b"BASE-INITRD-BYTES")
    archive = data[: -len(b"BASE-INITRD-BYTES")]
    assert len(archive) % 4 == 0  # the kernel looks for the next archive on a 4-byte boundary
    listing = subprocess.run(["cpio", "-it"], input=archive, capture_output=True, check=True).stdout.decode()
    assert listing.split() == [
        "console-vm",
        "console-vm/kernel",
        "console-vm/kernel/fs",
        "console-vm/kernel/fs/9p",
        "console-vm/kernel/fs/9p/9p.ko",
    ]
    dest = tmp_path / "x"
    dest.mkdir()
    subprocess.run(["cpio", "-idm"], input=archive, cwd=dest, capture_output=True, check=True)
    assert (dest / "console-vm/kernel/fs/9p/9p.ko").read_bytes() == module.read_bytes()
