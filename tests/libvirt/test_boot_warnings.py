"""What the agent tells about a domain's console before it starts: a busybox init whose rcS runs
udhcpc in the foreground shows no prompt until a DHCP lease comes (issue 11, the define form's
busybox rootfs). Read from real trees laid out as lxc-busybox makes them."""

from __future__ import annotations

import os

from containers.libvirt.handlers import boot_warnings


def tree(root, rcs: str, *, link: str = "hard") -> str:
    for d in ("bin", "sbin", "etc/init.d"):
        os.makedirs(root / d, exist_ok=True)
    (root / "bin/busybox").write_bytes(b"\x7fELF busybox")
    (root / "bin/sh").symlink_to("busybox")
    if link == "hard":
        os.link(root / "bin/busybox", root / "sbin/init")  # as lxc-busybox does
    else:
        (root / "sbin/init").symlink_to("../bin/busybox")
    (root / "etc/init.d/rcS").write_text(rcs)
    return str(root)


TEMPLATE_RCS = "#!/bin/sh\n/bin/syslogd\n/bin/mount -a\n/bin/udhcpc\n"


def test_busybox_init_with_a_foreground_udhcpc_is_announced(tmp_path):
    rootfs = tree(tmp_path / "a", TEMPLATE_RCS)
    (note,) = boot_warnings(rootfs, "/sbin/init")
    assert "'/bin/udhcpc' waits in the foreground for a DHCP lease" in note
    assert "init /bin/sh" in note
    assert boot_warnings(tree(tmp_path / "b", TEMPLATE_RCS, link="symbolic"), "/sbin/init") == [note]


def test_nothing_to_say_when_the_console_gets_a_prompt(tmp_path):
    rootfs = tree(tmp_path / "a", TEMPLATE_RCS)
    assert boot_warnings(rootfs, "/bin/sh") == []  # a shell at once
    assert boot_warnings(tree(tmp_path / "b", "/bin/udhcpc -n -q\n"), "/sbin/init") == []  # gives up
    assert boot_warnings(tree(tmp_path / "c", "/bin/udhcpc -b\n"), "/sbin/init") == []  # background
    assert boot_warnings(tree(tmp_path / "d", "# /bin/udhcpc\n/bin/mount -a\n"), "/sbin/init") == []
    other = tmp_path / "e"
    (other / "sbin").mkdir(parents=True)
    (other / "sbin/init").write_text("#!/bin/sh\n")  # not busybox (systemd, say)
    assert boot_warnings(str(other), "/sbin/init") == []


def test_an_rcs_link_leading_out_of_the_rootfs_is_not_read(tmp_path):
    outside = tmp_path / "host-file"
    outside.write_text("/bin/udhcpc\n")
    rootfs = tree(tmp_path / "a", "")
    os.unlink(f"{rootfs}/etc/init.d/rcS")
    os.symlink(str(outside), f"{rootfs}/etc/init.d/rcS")
    assert boot_warnings(rootfs, "/sbin/init") == []


def test_links_in_the_rootfs_resolve_as_the_container_sees_them(tmp_path):
    # An absolute link names a file of the container's tree, not the host's; '..' stops at its root.
    rootfs = tree(tmp_path / "a", "")
    os.unlink(f"{rootfs}/etc/init.d/rcS")
    (tmp_path / "a/etc/rcS.real").write_text(TEMPLATE_RCS)
    os.symlink("/etc/rcS.real", f"{rootfs}/etc/init.d/rcS")
    (note,) = boot_warnings(rootfs, "/sbin/init")
    assert "'/bin/udhcpc' waits" in note
    (tmp_path / "host-file").write_text("/bin/udhcpc\n")
    os.unlink(f"{rootfs}/etc/init.d/rcS")
    os.symlink("../../../host-file", f"{rootfs}/etc/init.d/rcS")
    assert boot_warnings(rootfs, "/sbin/init") == []
