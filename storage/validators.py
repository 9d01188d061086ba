"""Validation of everything about storage that can reach argv or a path."""

from __future__ import annotations

import os
import re

from console.errors import InvalidInput
from console.identifiers import validate_container_name
from console.paths import canonical_path, check_place

# ASCII digits only: ``\d`` alone also takes other scripts' digits, which float() reads.
_SIZE_RE = re.compile(r"(?P<num>-?\d+(?:\.\d+)?)[ ]*(?P<unit>[KMGT]?)(?:i?B)?", re.IGNORECASE | re.ASCII)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
MIN_IMAGE_BYTES = 1024**2
# mkfs.btrfs refuses anything smaller than about 114 MiB (with its default mixed-bg off).
MIN_BTRFS_BYTES = 128 * 1024**2


def parse_size(value: object, *, field: str = "size") -> int:
    """``5G``, ``500M``, ``1.5G``, ``1048576`` (bytes); binary units, as truncate/dd read them."""
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip(" ")
    else:
        raise InvalidInput("a size is required, such as 500M or 5G", field=field)
    if not text:
        raise InvalidInput("a size is required, such as 500M or 5G", field=field)
    m = _SIZE_RE.fullmatch(text)
    if not m:
        raise InvalidInput(
            f"{text!r} is not a size: write a number with K, M, G or T, such as 500M or 5G", field=field
        )
    number = float(m.group("num"))
    if number <= 0:
        raise InvalidInput(f"the size must be larger than zero (got {text})", field=field)
    size = int(number * _UNITS[m.group("unit").upper()])
    if size < MIN_IMAGE_BYTES:
        raise InvalidInput(f"the size must be at least 1M (got {text})", field=field)
    if size > 64 * 1024**4:
        raise InvalidInput(f"{text} is larger than 64T", field=field)
    return size


def validate_pool_name(value: object) -> str:
    """Pool names follow the container name rules (they become directory names and VG names)."""
    try:
        return validate_container_name(value)
    except InvalidInput as exc:
        raise InvalidInput(exc.message.replace("container name", "pool name"), field="name") from None


# Directories of the host's own system: a dir pool there would mix containers into them.
SYSTEM_DIRS = ("/etc", "/usr", "/var", "/boot", "/root", "/bin", "/sbin", "/lib", "/lib64", "/run")


def validate_pool_directory(value: object) -> str:
    """A dir pool's directory: canonical, not /, /proc, /sys, /dev, nor a system directory itself."""
    path = canonical_path(value, field="path", what="a pool's directory", directory=True)
    check_system_dir(path)
    return path


def check_system_dir(path: str, *, shown: str | None = None) -> None:
    """Refuse one of :data:`SYSTEM_DIRS` itself (the agent asks it again of the resolved path)."""
    check_place(path, field="path", what="a pool's directory", directory=True, shown=shown)
    if path in SYSTEM_DIRS:
        raise InvalidInput(f"{shown or path} is a system directory: it cannot be a pool", field="path")


def validate_image_name(value: object) -> str:
    """The backing file's name inside the image directory (``.img`` is added when missing)."""
    try:
        name = validate_container_name(value)
    except InvalidInput as exc:
        raise InvalidInput(exc.message.replace("container name", "file name"), field="name") from None
    return name if name.endswith(".img") else f"{name}.img"


LVM_NAME_RE = re.compile(r"[A-Za-z0-9+_][A-Za-z0-9+_.-]{0,126}")


def validate_vg_name(value: object) -> str:
    """LVM's own rule: letters, digits, ``+_.-``, not starting with ``-``, not ``.``/``..``."""
    if not isinstance(value, str) or not value:
        raise InvalidInput("a volume group name is required", field="vg_name")
    if not LVM_NAME_RE.fullmatch(value) or value in (".", ".."):
        raise InvalidInput(
            "volume group names may contain letters, digits, '+', '_', '.', '-' and must not start with '-'",
            field="vg_name",
        )
    if value.startswith(("snapshot", "pvmove")) or "_mlog" in value or "_mimage" in value:
        raise InvalidInput(f"LVM reserves names like {value!r}", field="vg_name")
    return value


_DEVICE_RE = re.compile(r"/dev/[A-Za-z0-9][A-Za-z0-9_./-]{0,62}")


def validate_device_path(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput("a block device is required, such as /dev/loop0", field="device")
    normal = os.path.normpath(value)
    if not _DEVICE_RE.fullmatch(normal) or ".." in normal.split("/"):
        raise InvalidInput(f"{value!r} is not a device path under /dev", field="device")
    return normal
