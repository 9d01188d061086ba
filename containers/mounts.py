"""Bind mounts (``lxc.mount.entry``): validation against the host's allowed roots."""

from __future__ import annotations

import os
import re

from console.errors import InvalidInput

_SAFE_PATH = re.compile(r"^[A-Za-z0-9_./@+-]+$")


def normalise_roots(roots: list[str]) -> list[str]:
    out = []
    for root in roots:
        root = root.strip()
        if not root:
            continue
        if not root.startswith("/") or not _SAFE_PATH.fullmatch(root) or "\x00" in root:
            raise InvalidInput(
                f"{root!r}: an allowed root must be an absolute path without blanks", field="roots"
            )
        normal = os.path.normpath(root)
        if normal == "/":
            raise InvalidInput("/ cannot be an allowed root: it would allow every host path", field="roots")
        out.append(normal)
    return sorted(set(out))


def within(path: str, roots: list[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def validate_source(value: object, roots: list[str]) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput("the host directory is required", field="source")
    if not value.startswith("/"):
        raise InvalidInput("the host directory must be an absolute path", field="source")
    if not _SAFE_PATH.fullmatch(value):
        raise InvalidInput("the host path may contain only letters, digits and . _ / @ + -", field="source")
    normal = os.path.normpath(value)
    if not roots:
        raise InvalidInput("no host directory may be bind-mounted: an admin must set the allowed roots first")
    if not within(normal, roots):
        raise InvalidInput(f"{normal} is outside the allowed roots ({', '.join(roots)})", field="source")
    return normal


def validate_target(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput("the target inside the container is required", field="target")
    if value.startswith("/"):
        raise InvalidInput(
            "the target must be relative to the container's root (mnt/data, not /mnt/data)", field="target"
        )
    if not _SAFE_PATH.fullmatch(value):
        raise InvalidInput("the target may contain only letters, digits and . _ / @ + -", field="target")
    parts = value.split("/")
    if ".." in parts:
        raise InvalidInput("the target must not contain '..'", field="target")
    return "/".join(p for p in parts if p not in ("", "."))


def mount_entry(source: str, target: str, *, read_only: bool, create: str | None) -> str:
    options = ["ro" if read_only else "rw", "bind"]
    if create in ("dir", "file"):
        options.append(f"create={create}")
    return f"{source} {target} none {','.join(options)} 0 0"
