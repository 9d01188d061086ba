"""Validation of everything about a container that can reach argv or a path."""

from __future__ import annotations

import os
import re

from console.errors import InvalidInput
from console.paths import canonical_path, check_place, within


def validate_lxc_path(value: object, allowed: list[str]) -> str:
    """An LXC path must be one the host declares (its default or a pool's), and a directory LXC
    may use (never /, /proc, /sys or /dev, even when a pool made one there)."""
    if not isinstance(value, str) or not value:
        raise InvalidInput("an LXC path is required", field="lxc_path")
    normal = canonical_path(value, field="lxc_path", what="the LXC path")
    if normal not in [os.path.normpath(p) for p in allowed]:
        raise InvalidInput(
            f"unknown LXC path {value!r}; this host has: {', '.join(allowed)}", field="lxc_path"
        )
    check_place(normal, field="lxc_path", what="an LXC path", directory=True)
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
    normal = canonical_path(value, field="tarball", what="the tarball path")
    roots = tarball_dirs(settings.ROOTFS_TARBALL_DIRS)
    if not within(normal, roots):
        raise InvalidInput(f"tarballs are allowed only under {', '.join(roots)}", field="tarball")
    if not normal.endswith(_TARBALL_SUFFIXES):
        raise InvalidInput(
            f"the tarball must end with one of {', '.join(_TARBALL_SUFFIXES)}", field="tarball"
        )
    return normal


def tarball_dirs(dirs: list[str]) -> list[str]:
    """The directories tarballs may come from (a setting), canonical and never /, /proc, ..."""
    return [canonical_path(d, field="tarball", what="a tarball directory", directory=True) for d in dirs]
