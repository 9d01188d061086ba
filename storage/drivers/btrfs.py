"""Btrfs pools: ``mkfs.btrfs``, ``mount``, ``btrfs subvolume list``, ``btrfs filesystem df/usage``."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from console.runner import CommandError, Runner

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
