"""Bind mounts (``lxc.mount.entry``): validation against the host's allowed roots."""

from __future__ import annotations

import re

from console.errors import InvalidInput
from console.paths import canonical_path, within

# fullmatch only: "$" would let a final newline through.
_SAFE_PATH = re.compile(r"[A-Za-z0-9_./@+-]+")


def normalise_roots(roots: list[str]) -> list[str]:
    out = []
    for root in roots:
        if not root.strip(" "):
            continue
        if not _SAFE_PATH.fullmatch(root.strip(" ")):
            raise InvalidInput(
                f"{root!r}: an allowed root must be an absolute path without blanks", field="roots"
            )
        out.append(canonical_path(root, field="roots", what="an allowed root", directory=True))
    return sorted(set(out))


# The host's own directories: a container that may bind-mount them (read-write by default) can
# change the host. Allowed as roots only when the admin says so knowingly.
SYSTEM_TREES = ("/etc", "/usr", "/boot", "/root", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/run")
SYSTEM_DIRS = ("/var", "/var/lib", "/var/log", "/home")


def system_directories(roots: list[str]) -> list[str]:
    """The roots that are, or are inside, a directory of the host system itself."""
    return [r for r in roots if r in SYSTEM_DIRS or within(r, SYSTEM_TREES)]


def validate_source(value: object, roots: list[str]) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput("the host directory is required", field="source")
    if not value.startswith("/"):
        raise InvalidInput("the host directory must be an absolute path", field="source")
    if not _SAFE_PATH.fullmatch(value):
        raise InvalidInput("the host path may contain only letters, digits and . _ / @ + -", field="source")
    if not roots:
        raise InvalidInput("no host directory may be bind-mounted: an admin must set the allowed roots first")
    return canonical_path(value, field="source", what="the host directory", directory=True, roots=roots)


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
