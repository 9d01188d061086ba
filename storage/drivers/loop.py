"""Loop-file block devices (``truncate``/``dd``, ``losetup``) and block-device probes (``blkid``).

Only this module builds argv for them. Sizes of attached devices come from sysfs
(``/sys/block/loopN/size``, 512-byte sectors): ``losetup --list`` has no size column.
"""

from __future__ import annotations

import builtins
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from console.runner import CommandError, CommandResult, Runner

_LOOP_RE = re.compile(r"/dev/loop\d+")


@dataclass
class LoopInfo:
    device: str
    backing_file: str
    size_bytes: int = 0
    offset: int = 0
    read_only: bool = False


def parse_losetup_json(text: str) -> list[LoopInfo]:
    """``losetup --list --json`` (util-linux 2.38)."""
    data = json.loads(text) if text.strip() else {}
    out = []
    for row in data.get("loopdevices", []):
        out.append(
            LoopInfo(
                device=row["name"],
                backing_file=(row.get("back-file") or "").removesuffix(" (deleted)"),
                size_bytes=int(row.get("sizelimit") or 0),
                offset=int(row.get("offset") or 0),
                read_only=bool(row.get("ro")),
            )
        )
    return sorted(out, key=lambda i: _loop_number(i.device))


_LOSETUP_A = re.compile(
    r"^(?P<dev>/dev/loop\d+): \[(?P<devno>[0-9a-fA-F]+)\]:(?P<ino>\d+) \((?P<file>.*)\)\s*$"
)


def parse_losetup_all(text: str) -> list[LoopInfo]:
    """``losetup -a`` / ``losetup --all``: ``/dev/loop0: [ca01]:30352 (/root/xvdz.img)``."""
    out = []
    for line in text.splitlines():
        m = _LOSETUP_A.match(line.strip())
        if m:
            out.append(LoopInfo(device=m.group("dev"), backing_file=m.group("file")))
    return sorted(out, key=lambda i: _loop_number(i.device))


def _loop_number(device: str) -> int:
    digits = re.sub(r"\D", "", device)
    return int(digits) if digits else 0


def parse_blkid_export(text: str) -> dict[str, str]:
    """``blkid -p -o export DEV``: ``KEY=value`` lines (values may carry backslash escapes)."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = re.sub(r"\\(.)", r"\1", value.strip())
    return out


def read_mounts(path: str = "/proc/self/mounts") -> list[tuple[str, str, str]]:
    """(source, target, fstype) of every mount, octal escapes decoded."""
    out: list[tuple[str, str, str]] = []
    try:
        text = Path(path).read_text()
    except OSError:
        return out
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            out.append((_unescape(parts[0]), _unescape(parts[1]), _unescape(parts[2])))
    return out


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_lsblk_mountpoints(text: str) -> list[str]:
    """Every mountpoint in ``lsblk -J -o PATH,MOUNTPOINT`` output, partitions included."""
    found: list[str] = []

    def walk(rows: list[dict]) -> None:
        for row in rows:
            if row.get("mountpoint"):
                found.append(str(row["mountpoint"]))
            walk(row.get("children") or [])

    walk(json.loads(text or "{}").get("blockdevices", []))
    return found


def mountpoints_of(device: str, mounts: list[tuple[str, str, str]] | None = None) -> list[str]:
    mounts = read_mounts() if mounts is None else mounts
    return [target for source, target, _fs in mounts if source == device]


class LoopDriver:
    """Files as block devices on this host."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def create_file(self, path: str, size_bytes: int, *, fill: bool = False) -> None:
        """A sparse file (``truncate -s``) or one filled with zeros (``dd``), never over an existing one."""
        if os.path.lexists(path):
            raise CommandError(f"{path} already exists; choose another name")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if fill:
            mib, rest = divmod(size_bytes, 1024**2)
            if rest:
                raise CommandError("a filled file (dd) must be a whole number of MiB")
            argv = ["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={mib}", "conv=excl", "status=none"]
            timeout = max(600, mib // 20)
        else:
            argv = ["truncate", "-s", str(size_bytes), path]
            timeout = 60
        try:
            self.runner.run(argv, timeout=timeout, error_message=f"could not create {path}")
        except CommandError:
            if os.path.isfile(path):
                os.unlink(path)
                self.runner.log(f"# removed the half-written {path}")
            raise

    def attach(self, path: str) -> str:
        """``losetup --find --show FILE``: the first free loop device; returns its path."""
        result = self.runner.run(
            ["losetup", "--find", "--show", path], error_message=f"no free loop device for {path}"
        )
        device = result.stdout.strip()
        if not _LOOP_RE.fullmatch(device):
            raise CommandError(f"losetup printed {device!r}, not a loop device", argv=result.argv)
        return device

    def detach(self, device: str) -> None:
        if not _LOOP_RE.fullmatch(device):
            raise ValueError(f"not a loop device: {device!r}")
        self.runner.run(["losetup", "-d", device], error_message=f"could not detach {device}")

    def list(self) -> list[LoopInfo]:
        result = self.runner.run(["losetup", "--list", "--json"], record=False, timeout=30)
        infos = parse_losetup_json(result.stdout)
        for info in infos:
            info.size_bytes = device_size(info.device) or info.size_bytes
        return infos

    def remove_file(self, path: str) -> None:
        """Delete a backing file on the runner's host (``rm -f``: a file already gone is fine)."""
        self.runner.run(["rm", "-f", "--", path], error_message=f"could not delete {path}")

    def device_kind(self, path: str) -> str:
        """What ``path`` is on the runner's host (``stat -L -c %F``): "block special file",
        "regular file"..., or "" when it does not exist."""
        result = self.runner.run(
            ["stat", "-L", "-c", "%F", "--", path], check=False, record=False, timeout=10
        )
        return result.stdout.strip() if result.returncode == 0 else ""

    def mounted_parts(self, device: str) -> builtins.list[str]:  # list: the method above
        """Where the device or one of its partitions is mounted (``lsblk``, as the runner's host sees it)."""
        result = self._read(["lsblk", "-J", "-o", "PATH,MOUNTPOINT", "--", device], device)
        return parse_lsblk_mountpoints(result.stdout)

    def probe(self, device: str) -> dict[str, str]:
        """What ``blkid -p`` finds on the device ({} when it holds no known signature: exit 2)."""
        result = self._read(["blkid", "-p", "-o", "export", device], device, ok=(0, 2))
        return {} if result.returncode == 2 else parse_blkid_export(result.stdout)

    def _read(self, argv: builtins.list[str], device: str, ok: tuple[int, ...] = (0,)) -> CommandResult:
        """A read-only probe of ``device``; any exit status outside ``ok`` is raised with stderr."""
        result = self.runner.run(argv, check=False, record=False, timeout=30)
        if result.returncode not in ok:
            raise CommandError(
                f"{argv[0]} could not read {device}: {result.stderr.strip() or result.returncode}",
                argv=result.argv,
                returncode=result.returncode,
                stderr=result.stderr,
            )
        return result


def device_size(device: str) -> int:
    name = os.path.basename(device)
    try:
        return int(Path(f"/sys/block/{name}/size").read_text().strip()) * 512
    except (OSError, ValueError):
        return 0


def wipe_signatures(runner: Runner, device: str) -> None:
    """``wipefs -a``: erase filesystem/LVM signatures the user confirmed may be destroyed."""
    runner.run(["wipefs", "-a", device], error_message=f"wipefs could not clear {device}")
