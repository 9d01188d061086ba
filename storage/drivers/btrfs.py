"""Btrfs pools: ``mkfs.btrfs``, ``mount``, ``btrfs subvolume list``, ``btrfs filesystem df/usage``."""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from console.errors import InvalidInput
from console.runner import CommandError, Runner
from storage.drivers.pool import PoolType, Progress, Reading, register
from storage.validators import MIN_BTRFS_BYTES

if TYPE_CHECKING:
    from storage.models import Pool

_SUBVOL = re.compile(
    r"^ID (?P<id>\d+) gen (?P<gen>\d+)(?: cgen \d+)? top level (?P<top>\d+) path (?P<path>.+)$"
)
_DF = re.compile(r"^(?P<type>\w+), (?P<profile>[\w/]+): total=(?P<total>\S+), used=(?P<used>\S+)$")
_BINARY = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4, "PiB": 1024**5}


@dataclass
class Subvolume:
    id: int
    gen: int
    top_level: int
    path: str


def parse_subvolume_list(text: str) -> list[Subvolume]:
    """``btrfs subvolume list DIR``: ``ID 257 gen 9 top level 5 path btrfs_container/rootfs``."""
    out = []
    for line in text.splitlines():
        m = _SUBVOL.match(line.strip())
        if m:
            out.append(Subvolume(int(m["id"]), int(m["gen"]), int(m["top"]), m["path"]))
    return out


def parse_btrfs_bytes(value: str) -> int:
    """``1.01GiB``, ``309.14MiB``, ``0.00``, ``16384`` (with ``-b``)."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGTP]iB|B)?", value.strip())
    if not m:
        raise ValueError(f"not a btrfs size: {value!r}")
    return int(float(m.group(1)) * _BINARY[m.group(2) or "B"])


def parse_filesystem_df(text: str) -> list[dict]:
    """``btrfs filesystem df [-b] DIR``: one row per block group type and profile."""
    out = []
    for line in text.splitlines():
        m = _DF.match(line.strip())
        if m:
            out.append(
                {
                    "type": m["type"],
                    "profile": m["profile"],
                    "total": parse_btrfs_bytes(m["total"]),
                    "used": parse_btrfs_bytes(m["used"]),
                }
            )
    return out


def parse_filesystem_usage(text: str) -> dict[str, int]:
    """The ``Overall:`` figures of ``btrfs filesystem usage -b DIR`` (device size, used, free)."""
    keys = {
        "Device size": "size",
        "Used": "used",
        "Free (estimated)": "free",
        "Device allocated": "allocated",
    }
    out: dict[str, int] = {}
    for line in text.splitlines():
        label, sep, rest = line.strip().partition(":")
        if sep and label in keys and rest.split():
            try:
                out[keys[label]] = parse_btrfs_bytes(rest.split()[0])
            except ValueError:
                continue
    return out


class BtrfsDriver:
    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def is_snapshot(self, path: str) -> bool:
        """Whether the subvolume at ``path`` is a snapshot (it has a parent subvolume)."""
        result = self.runner.run(["btrfs", "subvolume", "show", path], check=False, record=False)
        for line in result.stdout.splitlines():
            key, _, value = line.strip().partition(":")
            if key == "Parent UUID":
                return value.strip() not in ("", "-")
        return False

    def mkfs(self, device: str, *, label: str, force: bool = False) -> None:
        """``mkfs.btrfs``; ``-f`` only when the user confirmed wiping what the device holds."""
        argv = ["mkfs.btrfs", "-q", "-L", label[:255]]
        if force:
            argv.append("-f")
        self.runner.run([*argv, device], timeout=300, error_message=f"mkfs.btrfs failed on {device}")

    def mount(self, device: str, mountpoint: str) -> None:
        os.makedirs(mountpoint, exist_ok=True)
        self.runner.run(
            ["mount", "-t", "btrfs", device, mountpoint],
            error_message=f"could not mount {device} at {mountpoint}",
        )

    def umount(self, mountpoint: str) -> None:
        self.runner.run(["umount", mountpoint], error_message=f"could not unmount {mountpoint}")

    def subvolumes(self, mountpoint: str) -> list[Subvolume]:
        result = self.runner.run(["btrfs", "subvolume", "list", mountpoint], record=False, timeout=60)
        return parse_subvolume_list(result.stdout)

    def df(self, mountpoint: str) -> list[dict]:
        result = self.runner.run(["btrfs", "filesystem", "df", "-b", mountpoint], record=False, timeout=60)
        return parse_filesystem_df(result.stdout)

    def usage(self, mountpoint: str) -> dict[str, int]:
        result = self.runner.run(
            ["btrfs", "filesystem", "usage", "-b", mountpoint], record=False, timeout=60, check=False
        )
        if result.returncode != 0:
            raise CommandError(f"btrfs filesystem usage failed on {mountpoint}", argv=result.argv)
        return parse_filesystem_usage(result.stdout)


@register
class BtrfsPool(PoolType):
    """A btrfs filesystem on a device, mounted at its LXC path; containers are subvolumes."""

    kind = "btrfs"
    noun = "btrfs pool"
    wiped_by = "mkfs.btrfs"
    signature = "btrfs"

    def validate(self, host, inventory, *, name, device, vg_name, path, lxc_path):
        if device and device.get("size") and int(device["size"]) < MIN_BTRFS_BYTES:
            raise InvalidInput(
                f"{device['path']} is smaller than 128 MiB, too small for btrfs", field="device"
            )
        return {"lxc_path": lxc_path}

    def create(self, params: dict[str, Any], runner: Runner, progress: Progress) -> dict[str, str]:
        device, lxc_path = params["device"], params["lxc_path"]
        btrfs = BtrfsDriver(runner)
        progress(20, f"mkfs.btrfs {device}")
        btrfs.mkfs(device, label=params["name"], force=bool(params.get("wipe")))
        progress(70, f"mount {device} {lxc_path}")
        btrfs.mount(device, lxc_path)
        return {"source": device, "mountpoint": lxc_path}

    def read(self, pool: Pool, runner: Runner, details: dict) -> Reading:
        from storage.drivers.loop import read_mounts

        mounted = [t for s, t, fs in read_mounts() if t == pool.mountpoint and fs == "btrfs"]
        if not mounted:
            return Reading(health=f"not mounted at {pool.mountpoint}")
        btrfs = BtrfsDriver(runner)
        usage = btrfs.usage(pool.mountpoint)
        details["usage"] = usage
        details["df"] = btrfs.df(pool.mountpoint)
        details["subvolumes"] = [asdict(s) for s in btrfs.subvolumes(pool.mountpoint)]
        return Reading(usage.get("size"), usage.get("used"))

    def destroy(self, pool: Pool, runner: Runner, progress: Progress) -> None:
        from storage.drivers.dir import DirDriver
        from storage.drivers.loop import mountpoints_of

        if pool.mountpoint in mountpoints_of(pool.source):
            progress(30, f"umount {pool.mountpoint}")
            BtrfsDriver(runner).umount(pool.mountpoint)
        DirDriver(runner).remove_if_empty(pool.mountpoint)
