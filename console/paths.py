"""Host paths a user gives (pool directories, LXC paths, mount roots and sources, root filesystems,
tarballs): one check, made canonical first, on the web side and again on the agent.

The web side only reads the text: it makes the path canonical (``//etc`` is ``/etc``) and checks
it against the allowed and forbidden places. Symbolic links are the host's business, so the
agent, where the path is used, resolves them and checks the result again before anything runs.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Callable, Iterable

from console.errors import InvalidInput

# Kernel and device filesystems: a directory there is never a pool, an LXC path, a mount root
# or a root filesystem (``/dev/sda`` as a "directory" made a directory in /dev).
FORBIDDEN_DIRS = ("/proc", "/sys", "/dev")
MAX_PATH_LENGTH = 4096
# Control characters (newline, tab, NUL, DEL, C1), format characters (zero-width, direction
# overrides) and line/paragraph separators: none belongs in a path.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def has_control_characters(text: str) -> bool:
    return any(unicodedata.category(ch) in _REFUSED_CATEGORIES for ch in text)


def within(path: str, roots: Iterable[str]) -> bool:
    """``path`` is one of ``roots`` or below one (whole components: /srv/sharedX is not in /srv/shared)."""
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def canonical_path(
    value: object,
    *,
    field: str,
    what: str = "the path",
    directory: bool = False,
    roots: Iterable[str] | None = None,
) -> str:
    """The canonical form of an absolute host path, checked before it is used or stored.

    Refused: anything but a non-empty string, control characters anywhere (a trailing newline
    too), relative paths. Repeated slashes, ``.`` and ``..`` are folded (``//etc`` and
    ``/srv/../etc`` are ``/etc``) before any check; symbolic links are the agent's to resolve.
    ``directory``: the path is taken as a directory the console creates or hands to LXC or
    libvirt, so the host's ``/`` and anything under /proc, /sys and /dev are refused (which also
    covers ``/proc/self/root/...``). ``roots``: the path must be one of them or below one.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{what} is required", field=field)
    if has_control_characters(value):
        raise InvalidInput(
            f"{what} must be an absolute path without control characters (newline, tab, NUL, ...)",
            field=field,
        )
    value = value.strip(" ")
    if len(value) > MAX_PATH_LENGTH:
        raise InvalidInput(f"{what} is longer than {MAX_PATH_LENGTH} characters", field=field)
    if not value.startswith("/"):
        raise InvalidInput(f"{what} must be an absolute path (starting with /)", field=field)
    # posixpath.normpath keeps a leading "//" (POSIX leaves its meaning open): fold it too.
    normal = "/" + os.path.normpath(value).lstrip("/")
    check_place(normal, field=field, what=what, directory=directory, roots=roots)
    return normal


def check_place(
    path: str,
    *,
    field: str,
    what: str,
    directory: bool = False,
    roots: Iterable[str] | None = None,
    shown: str | None = None,
) -> None:
    """Refuse a canonical ``path`` outside ``roots`` or, for a directory, the host's / and the
    kernel's filesystems. ``shown`` is how the message names it (``X resolves to Y``)."""
    shown = shown or path
    if directory:
        if path == "/":
            raise InvalidInput(f"{shown} is the host's root (/): it cannot be {what}", field=field)
        for top in FORBIDDEN_DIRS:
            if within(path, [top]):
                raise InvalidInput(
                    f"{shown} is in {top}, the kernel's own filesystem: it cannot be {what}", field=field
                )
    if roots is not None:
        roots = list(roots)
        if not within(path, roots):
            allowed = ", ".join(roots) or "none are allowed"
            raise InvalidInput(f"{shown} is outside the allowed roots ({allowed})", field=field)


def resolve_on_host(
    path: str,
    *,
    field: str = "path",
    what: str = "the path",
    directory: bool = False,
    roots: Iterable[str] | None = None,
    realpath: Callable[[str], str] = os.path.realpath,
) -> str:
    """The agent's check, where the path is used: canonical again, then every symbolic link
    resolved (the path need not exist yet: its existing part is resolved) and the result checked
    against the same places, with the roots resolved the same way. Returns the resolved path,
    the one to use from here on. ``realpath``: how links are resolved, in this process by
    default, or on the runner's host (``DirDriver.resolve``, ``realpath -m``)."""
    normal = canonical_path(path, field=field, what=what, directory=directory, roots=roots)
    real = realpath(normal)
    real_roots = None if roots is None else [realpath(r) for r in roots]
    check_place(
        real,
        field=field,
        what=what,
        directory=directory,
        roots=real_roots,
        shown=normal if real == normal else f"{normal} resolves to {real}, which",
    )
    return real
