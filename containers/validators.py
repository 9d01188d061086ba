"""Validation of everything about a container that can reach argv or a path."""

from __future__ import annotations

import os
import re

from console.errors import InvalidInput

# LXC's own rule plus ours: 1-63 characters, letters, digits, "-", "_", ".",
# not starting with "-" (it would read as an option) or "." (hidden, "..").
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$")


def validate_container_name(value: object) -> str:
    if not isinstance(value, str) or value == "":
        raise InvalidInput("a container name is required", field="name")
    if len(value) > 63:
        raise InvalidInput(
            f"container names are at most 63 characters (this one has {len(value)})", field="name"
        )
    if value[0] in "-.":
        raise InvalidInput("container names must not start with '-' or '.'", field="name")
    if not _NAME_RE.match(value):
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
