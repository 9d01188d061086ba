"""Validation of everything about a container that can reach argv or a path."""

from __future__ import annotations

import os
import re

from console.errors import InvalidInput

# LXC's own rule plus ours: 1-63 characters, letters, digits, "-", "_", ".",
# not starting with "-" (it would read as an option) or "." (hidden, "..").
_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}")


def validate_container_name(value: object) -> str:
    if not isinstance(value, str) or value == "":
        raise InvalidInput("a container name is required", field="name")
    if len(value) > 63:
        raise InvalidInput(
            f"container names are at most 63 characters (this one has {len(value)})", field="name"
        )
    if value[0] in "-.":
        raise InvalidInput("container names must not start with '-' or '.'", field="name")
    if not _NAME_RE.fullmatch(value):
        raise InvalidInput("container names may contain only letters, digits, '-', '_' and '.'", field="name")
    return value


def validate_lxc_path(value: object, allowed: list[str]) -> str:
    """An LXC path must be one the host declares (its default or a pool's)."""
    if not isinstance(value, str) or not value:
        raise InvalidInput("an LXC path is required", field="lxc_path")
    if "\x00" in value or not value.startswith("/"):
        raise InvalidInput("the LXC path must be an absolute path", field="lxc_path")
    normal = os.path.normpath(value)
    if normal not in [os.path.normpath(p) for p in allowed]:
        raise InvalidInput(
            f"unknown LXC path {value!r}; this host has: {', '.join(allowed)}", field="lxc_path"
        )
    return normal


_RELEASE_RE = re.compile(r"^[a-z][a-z0-9-]{1,30}$")
_TARBALL_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tar.zst")


def validate_release(value: object) -> str:
    if not isinstance(value, str) or not _RELEASE_RE.fullmatch(value):
        raise InvalidInput("a Debian release is a codename such as bookworm", field="release")
    return value


def validate_tarball_path(value: object) -> str:
    """A rootfs tarball must sit in one of the directories an administrator allowed."""
    from django.conf import settings

    if not isinstance(value, str) or not value:
        raise InvalidInput("the path of a root filesystem tarball is required", field="tarball")
    if "\x00" in value or "\n" in value or not value.startswith("/"):
        raise InvalidInput("the tarball path must be an absolute path", field="tarball")
    normal = os.path.normpath(value)
    if not normal.endswith(_TARBALL_SUFFIXES):
        raise InvalidInput(
            f"the tarball must end with one of {', '.join(_TARBALL_SUFFIXES)}", field="tarball"
        )
    roots = [os.path.normpath(r) for r in settings.ROOTFS_TARBALL_DIRS]
    if not any(normal.startswith(root + "/") for root in roots):
        raise InvalidInput(f"tarballs are allowed only under {', '.join(roots)}", field="tarball")
    return normal
