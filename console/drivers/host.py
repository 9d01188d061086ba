"""Detect what a host can do: LXC, libvirt, btrfs, LVM + device-mapper, ZFS, loop, cgroups."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from console.runner import CommandError, Runner


def _version(runner: Runner, argv: list[str], pattern: str = r"(\d+(?:\.\d+)+)") -> dict[str, Any]:
    try:
        result = runner.run(argv, timeout=10, check=False, record=False)
    except CommandError as exc:
        return {"available": False, "reason": exc.message}
    text = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        last = text.splitlines()[-1] if text else f"exit status {result.returncode}"
        return {"available": False, "reason": last}
    match = re.search(pattern, text)
    return {"available": True, "version": match.group(1) if match else text[:80]}


def _filesystems() -> set[str]:
    try:
        lines = Path("/proc/filesystems").read_text().splitlines()
    except OSError:
        return set()
    return {line.split()[-1] for line in lines if line.strip()}


def cgroup_controllers() -> dict[str, Any]:
    """Enabled cgroup controllers and the layout (v1, v2 or hybrid)."""
    controllers: list[str] = []
    try:
        for line in Path("/proc/cgroups").read_text().splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 4 and parts[3] == "1":
                controllers.append(parts[0])
    except OSError:
        pass
    root = Path("/sys/fs/cgroup")
    if (root / "cgroup.controllers").exists():
        layout = "v2"
    elif (root / "unified").is_dir() and any((root / "unified").iterdir()):
        layout = "hybrid"
    else:
        layout = "v1"
    return {"available": bool(controllers), "layout": layout, "controllers": controllers}


def _libvirt(uri: str) -> dict[str, Any]:
    try:
        import libvirt
    except ImportError as exc:
        return {"available": False, "reason": f"libvirt-python missing: {exc}"}
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError as exc:
        return {"available": False, "uri": uri, "reason": str(exc).strip()}
    try:
        v = conn.getLibVersion()
        version = f"{v // 1000000}.{v // 1000 % 1000}.{v % 1000}"
        return {"available": True, "uri": uri, "version": version}
    finally:
        conn.close()


def parse_ip_addr_json(text: str) -> list[dict[str, str]]:
    """``ip -j -4 addr show``: each global IPv4 address with its interface and subnet."""
    import ipaddress
    import json

    out: list[dict[str, str]] = []
    for iface in json.loads(text or "[]"):
        for a in iface.get("addr_info", []):
            if a.get("family", "inet") != "inet" or a.get("scope") != "global":
                continue
            try:
                net = ipaddress.IPv4Interface(f"{a['local']}/{a['prefixlen']}").network
            except (KeyError, ValueError):
                continue
            out.append({"ifname": str(iface.get("ifname", "")), "address": a["local"], "network": str(net)})
    return out


def host_ipv4(runner: Runner) -> list[dict[str, str]]:
    """The host's own IPv4 subnets (lxcbr0, its uplink...): a libvirt network must not overlap them."""
    try:
        result = runner.run(["ip", "-j", "-4", "addr", "show"], record=False, timeout=10)
        return parse_ip_addr_json(result.stdout)
    except (CommandError, OSError, ValueError):
        return []


def detect_capabilities(host: Any) -> dict[str, Any]:
    """Probe this machine; every probe is read-only and bounded by a short timeout."""
    runner = Runner(None)
    fs = _filesystems()
    caps: dict[str, Any] = {}
    caps["lxc"] = _version(runner, ["lxc-create", "--version"])
    if caps["lxc"].get("available"):
        from containers.drivers.lxc import read_system_config

        try:
            caps["lxc"]["system_config"] = read_system_config(runner)
        except (CommandError, OSError):
            caps["lxc"]["system_config"] = {}
    caps["lxc"]["templates"] = sorted(
        p.name.removeprefix("lxc-") for p in Path("/usr/share/lxc/templates").glob("lxc-*")
    )
    caps["libvirt"] = _libvirt(getattr(host, "libvirt_uri", "lxc:///"))
    caps["btrfs"] = _version(runner, ["btrfs", "--version"])
    caps["btrfs"]["kernel"] = "btrfs" in fs
    lvm = _version(runner, ["lvm", "version"])
    dm = _version(runner, ["dmsetup", "targets"], pattern=r"(\S+)")
    lvm["device_mapper"] = bool(dm.get("available"))
    if not dm.get("available"):
        lvm["device_mapper_reason"] = dm.get("reason", "")
    caps["lvm"] = lvm
    caps["zfs"] = _version(runner, ["zfs", "version"])
    caps["zfs"]["kernel"] = "zfs" in fs or Path("/sys/module/zfs").exists()
    caps["loop"] = {
        "available": Path("/dev/loop-control").exists(),
        "devices": len([p for p in Path("/dev").glob("loop[0-9]*")]),
    }
    caps["cgroups"] = cgroup_controllers()
    caps["cpus"] = os.cpu_count() or 1
    caps["ipv4"] = host_ipv4(runner)
    caps["debootstrap"] = {
        "available": any(
            os.access(os.path.join(d, "debootstrap"), os.X_OK) for d in ("/usr/sbin", "/usr/bin")
        )
    }
    return caps
