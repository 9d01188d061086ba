"""Every file access the agent makes inside a container's root filesystem.

The container controls everything under its root: any name there may be a symbolic
link planted by someone attached to it.  This module is the one place that touches such
paths, so root never follows them.  Two parts:

* Read-only browsing of a running container through ``/proc/<PID>/root`` (below).
* Writes the agent makes under a root filesystem directory (hook scripts copied into the
  rootfs, ``/etc/hostname`` of a new container): :func:`write_file`, :func:`remove_file`,
  :func:`file_status`, :func:`write_hostname`, at the end of the module.

Browsing:

``/proc/<PID>/root`` (PID: the container's init as the host sees it) is the container's
root directory, in the container's mount namespace.  Opening it gives a directory file
descriptor from which every lookup in this module starts; nothing here ever takes a
host path built by string concatenation.

Paths are resolved *as if the container root were* ``/`` (like ``chroot``): ``..`` at the
root stays at the root, absolute symbolic links restart from the container root, and
relative links that climb above it are clamped to it.  Two strategies give that:

* ``openat2(2)`` with ``RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`` (Linux >= 5.6), called
  through ``ctypes`` because Python 3.11 has no wrapper: the kernel's own chroot-like
  resolution, which also refuses procfs "magic links" such as ``/proc/1/root``.
* when the kernel lacks it (``ENOSYS``, or a seccomp filter answering ``EPERM``), a walk
  component by component: each component is opened with ``O_PATH | O_NOFOLLOW``
  relative to the directory reached so far, a symbolic link is read through its own
  ``O_PATH`` descriptor and its target is spliced in front of the remaining components
  (restarting at the container root when absolute), and ``..`` re-opens the parent from
  the container root (never ``openat(fd, "..")``, which could leave the root), with at
  most 40 links followed.  A magic link's target is only *text* here, resolved inside
  the container root like any other link.

Files and directories are then opened for reading by re-opening the resolved ``O_PATH``
descriptor through ``/proc/self/fd`` (the very inode that was checked), so a file swapped
for a FIFO or a device between the check and the open is never opened.
"""

from __future__ import annotations

import ctypes
import errno
import heapq
import os
import secrets
import stat
import sys
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = [
    "Entry",
    "Listing",
    "RootfsError",
    "file_status",
    "list_dir",
    "make_target",
    "root_dir",
    "pid_root",
    "read_file",
    "remove_file",
    "resolve",
    "write_file",
    "write_hostname",
]

#: Longest path accepted, in bytes (the kernel's ``PATH_MAX``).
MAX_PATH = 4096
#: Symbolic links followed during one resolution (the kernel's ``MAXSYMLINKS``).
MAX_SYMLINKS = 40

_O_PATH_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC

# openat2(2): include/uapi/linux/openat2.h.  437 is the syscall number on every
# architecture using the unified syscall table (x86_64, aarch64, riscv64, ...).
_SYS_OPENAT2 = 437
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_NO_SYMLINKS = 0x04
_RESOLVE_IN_ROOT = 0x10
_OPENAT2_RETRIES = 8  # EAGAIN: a rename or mount raced with ".." resolution


class RootfsError(Exception):
    """A path cannot be browsed or written; ``message`` is fit to show to a person.

    ``code`` is the ``errno`` behind it when there is one (``ENOENT``: something is missing).
    """

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class Entry:
    """One directory entry, described without following it if it is a symbolic link."""

    name: str
    type: str  # "dir" | "file" | "symlink" | "other"
    size: int
    mode: str  # like "drwxr-xr-x"
    mtime: datetime  # aware, UTC
    target: str | None = None  # the link's text, for symlinks only


class IsAFile(Exception):
    """``list_dir`` was asked for something that is not a directory: ``entry`` describes it."""

    def __init__(self, entry: Entry) -> None:
        super().__init__(f"{entry.name} is not a directory")
        self.entry = entry


@dataclass(frozen=True)
class Listing:
    """A directory's entries: directories first, then by name, at most ``limit`` of them."""

    path: str  # the directory's resolved path inside the container
    entries: list[Entry]
    truncated: bool  # True when the directory holds more entries than were returned


# -- PID and root ---------------------------------------------------------------------


def _check_pid(pid: object) -> int:
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        raise RootfsError("the container's PID must be a positive integer")
    return pid


def _same_as_host_root(st: os.stat_result) -> bool:
    host = os.stat("/")
    return (st.st_dev, st.st_ino) == (host.st_dev, host.st_ino)


def _not_confined(pid: int) -> RootfsError:
    return RootfsError(f"process {pid} is not in a container: its root is the host's root")


def pid_root(pid: int) -> str:
    """Return ``/proc/<pid>/root`` after checking that the process runs in its own root.

    Raises ``RootfsError`` when ``pid`` is not a positive integer, when the process does
    not exist ("the container is not running"), or when its root is the host's own root
    (a PID reused by a host process must never expose the host's filesystem).
    """
    pid = _check_pid(pid)
    root = f"/proc/{pid}/root"
    try:
        st = os.stat(root)
    except PermissionError:
        raise RootfsError("permission denied to the container's root")
    except OSError:
        raise RootfsError("the container is not running")
    if _same_as_host_root(st):
        raise _not_confined(pid)
    return root


def _open_root(pid: int) -> int:
    """An ``O_PATH`` descriptor of the container root, checked after opening (no race)."""
    root = pid_root(pid)
    try:
        fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except PermissionError:
        raise RootfsError("permission denied to the container's root")
    except OSError:
        raise RootfsError("the container is not running")
    try:
        if _same_as_host_root(os.fstat(fd)):
            raise _not_confined(pid)
    except BaseException:
        os.close(fd)
        raise
    return fd


# -- path validation and errors -------------------------------------------------------


def _split(path: object) -> list[str]:
    """Validate a container path and return its components ("" and "." dropped).

    ``..`` is kept: it is resolved during the walk, after any symbolic link before it,
    exactly as the kernel does.  A relative path is taken from the container root.
    """
    if not isinstance(path, str):
        raise RootfsError("the path must be a string")
    if "\x00" in path:
        raise RootfsError("the path contains a NUL byte")
    try:
        size = len(os.fsencode(path))
    except UnicodeError:
        raise RootfsError("the path is not valid text")
    if size > MAX_PATH:
        raise RootfsError(f"the path is too long ({size} bytes, at most {MAX_PATH})")
    return [part for part in path.split("/") if part not in ("", ".")]


def _join(parts: list[str]) -> str:
    return "/" + "/".join(parts)


def _oserror(exc: OSError, path: str, *, openat2: bool = False) -> RootfsError:
    error = _describe_oserror(exc, path, openat2=openat2)
    error.code = exc.errno
    return error


def _describe_oserror(exc: OSError, path: str, *, openat2: bool) -> RootfsError:
    code = exc.errno
    if code == errno.ENOENT:
        return RootfsError(f"{path}: no such file or directory")
    if code == errno.ENOTDIR:
        return RootfsError(f"{path}: not a directory")
    if code == errno.ELOOP:
        if openat2:
            return RootfsError(
                f"{path}: too many levels of symbolic links, or a link into /proc the console refuses"
            )
        return RootfsError(f"{path}: too many levels of symbolic links")
    if code in (errno.EACCES, errno.EPERM):
        return RootfsError(f"{path}: permission denied")
    if code == errno.ENAMETOOLONG:
        return RootfsError(f"{path}: file name too long")
    if code == errno.EXDEV:
        return RootfsError(f"{path}: the path leaves the container's root")
    if code == errno.EAGAIN:
        return RootfsError(f"{path}: the filesystem changed during the lookup, try again")
    return RootfsError(f"{path}: {os.strerror(code) if code else exc}")


# -- openat2 ----------------------------------------------------------------------------


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc: ctypes.CDLL | None = None
_openat2_ok: bool | None = None


def _openat2(dirfd: int, path: str, flags: int, resolve: int) -> int:
    """Call ``openat2(2)``; raise ``OSError`` like ``os.open`` does."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    how = _OpenHow(flags | os.O_CLOEXEC, 0, resolve)
    encoded = os.fsencode(path)
    for _ in range(_OPENAT2_RETRIES):
        ctypes.set_errno(0)
        fd = _libc.syscall(
            ctypes.c_long(_SYS_OPENAT2),
            ctypes.c_int(dirfd),
            ctypes.c_char_p(encoded),
            ctypes.byref(how),
            ctypes.c_size_t(ctypes.sizeof(how)),
        )
        if fd >= 0:
            return int(fd)
        code = ctypes.get_errno()
        if code not in (errno.EAGAIN, errno.EINTR):
            break
    raise OSError(code, os.strerror(code), path)


def _use_openat2() -> bool:
    """Whether this kernel has ``openat2`` with ``RESOLVE_IN_ROOT`` (probed once)."""
    global _openat2_ok
    if _openat2_ok is None:
        if not sys.platform.startswith("linux"):
            _openat2_ok = False
        else:
            try:
                os.close(_openat2(-100, ".", os.O_PATH, _RESOLVE_IN_ROOT | _RESOLVE_NO_MAGICLINKS))
                _openat2_ok = True
            except OSError as exc:
                # ENOSYS: old kernel; EPERM: a seccomp filter; E2BIG/EINVAL: unknown flags.
                # Any other error comes from the lookup itself: the syscall exists.
                _openat2_ok = exc.errno not in (errno.ENOSYS, errno.EPERM, errno.E2BIG, errno.EINVAL)
    return _openat2_ok


def _fd_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


def _container_path(root_fd: int, fd: int) -> str | None:
    """The container path of ``fd`` from the kernel's own names (``None`` if not derivable).

    For a container in its own mount namespace both names are relative to its root
    (the root reads as ``/``); for a plain ``chroot`` they share the host prefix.
    """
    root, target = _fd_path(root_fd), _fd_path(fd)
    if target == root:
        return "/"
    if root == "/":
        return target if target.startswith("/") and not target.endswith(" (deleted)") else None
    if target.startswith(root + "/") and not target.endswith(" (deleted)"):
        return target[len(root) :]
    return None


# -- the manual walk ------------------------------------------------------------------


def _descend(root_fd: int, parts: list[str], step: Callable[[int, int, str], int]) -> int:
    """Open ``parts`` one below the other from the root, each with ``step(dir_fd, depth, name)``;
    every descriptor but the last is closed, all of them when a step fails."""
    fd = os.dup(root_fd)
    try:
        for depth, part in enumerate(parts, start=1):
            child = step(fd, depth, part)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_dirs(root_fd: int, parts: list[str], shown: str) -> int:
    """Re-open the directory ``parts`` (already resolved, no links) from the root."""

    def step(fd: int, depth: int, part: str) -> int:
        try:
            return os.open(part, _O_PATH_FLAGS | os.O_DIRECTORY, dir_fd=fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT):
                raise RootfsError(f"{shown}: the filesystem changed during the lookup, try again")
            raise _oserror(exc, shown)

    return _descend(root_fd, parts, step)


def _walk(root_fd: int, parts: list[str], shown: str) -> tuple[int, list[str]]:
    """Resolve ``parts`` inside the root by hand; return an ``O_PATH`` fd and its path parts."""
    pending = deque(parts)
    resolved: list[str] = []
    hops = 0
    cur = os.dup(root_fd)
    try:
        while pending:
            name = pending.popleft()
            if name in ("", "."):
                continue
            if name == "..":
                if resolved:  # ".." at the root stays at the root
                    resolved.pop()
                    parent = _open_dirs(root_fd, resolved, shown)
                    os.close(cur)
                    cur = parent
                continue
            try:
                fd = os.open(name, _O_PATH_FLAGS, dir_fd=cur)
            except OSError as exc:
                raise _oserror(exc, shown)
            try:
                st = os.fstat(fd)
                # readlinkat(fd, ""): the text of the very link this descriptor refers to
                target = os.readlink("", dir_fd=fd) if stat.S_ISLNK(st.st_mode) else None
                if target is None and not stat.S_ISDIR(st.st_mode) and pending:
                    raise RootfsError(f"{shown}: not a directory")
            except BaseException:
                os.close(fd)
                raise
            if target is not None:
                os.close(fd)
                hops += 1
                if hops > MAX_SYMLINKS:
                    raise RootfsError(f"{shown}: too many levels of symbolic links")
                if not target:
                    raise RootfsError(f"{shown}: no such file or directory")
                pending.extendleft(reversed(target.split("/")))
                if target.startswith("/"):  # absolute: from the container root
                    os.close(cur)
                    cur = os.dup(root_fd)
                    resolved = []
                continue  # relative: from the directory holding the link
            os.close(cur)
            cur = fd
            resolved.append(name)
    except OSError as exc:
        os.close(cur)
        raise _oserror(exc, shown)
    except BaseException:
        os.close(cur)
        raise
    return cur, resolved


# -- resolution -----------------------------------------------------------------------


def _open_in_root(root_fd: int, path: object) -> tuple[int, str]:
    """Resolve ``path`` inside the root: an ``O_PATH`` descriptor and the container path."""
    parts = _split(path)
    shown = _join(parts)
    if _use_openat2():
        try:
            fd = _openat2(root_fd, shown, os.O_PATH, _RESOLVE_IN_ROOT | _RESOLVE_NO_MAGICLINKS)
        except OSError as exc:
            raise _oserror(exc, shown, openat2=True)
        try:
            name = _container_path(root_fd, fd)
            if name is None:  # only a label: the descriptor above is what gets used
                walked, name_parts = _walk(root_fd, parts, shown)
                os.close(walked)
                name = _join(name_parts)
        except BaseException:
            os.close(fd)
            raise
        return fd, name
    fd, name_parts = _walk(root_fd, parts, shown)
    return fd, _join(name_parts)


def _reopen(fd: int, flags: int, shown: str) -> int:
    """Open the inode an ``O_PATH`` descriptor refers to (never a path that may have changed)."""
    try:
        return os.open(f"/proc/self/fd/{fd}", flags | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as exc:
        raise _oserror(exc, shown)


def resolve(pid: int, path: str) -> str:
    """Resolve ``path`` inside the root of the process ``pid``; return the container path.

    ``path`` is absolute inside the container (a relative one is taken from its root).
    Symbolic links are followed as if the container root were ``/``: the result never
    leaves it.  Raises ``RootfsError`` for a bad PID or path, a missing component, a
    symbolic link loop (more than 40 links), or a refused ``/proc`` magic link.
    """
    root_fd = _open_root(pid)
    try:
        fd, name = _open_in_root(root_fd, path)
        os.close(fd)
        return name
    finally:
        os.close(root_fd)


# -- listing and reading --------------------------------------------------------------

_TYPES = {stat.S_IFDIR: "dir", stat.S_IFREG: "file", stat.S_IFLNK: "symlink"}


def _kind(mode: int) -> str:
    return _TYPES.get(stat.S_IFMT(mode), "other")


def _describe(mode: int) -> str:
    fmt = stat.S_IFMT(mode)
    return {
        stat.S_IFIFO: "a FIFO",
        stat.S_IFSOCK: "a socket",
        stat.S_IFCHR: "a character device",
        stat.S_IFBLK: "a block device",
        stat.S_IFDIR: "a directory",
    }.get(fmt, "not a regular file")


def _entry(dir_fd: int, name: str) -> Entry | None:
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        kind = _kind(st.st_mode)
        target = os.readlink(name, dir_fd=dir_fd) if kind == "symlink" else None
    except FileNotFoundError:  # removed since the directory was read
        return None
    except OSError as exc:
        raise _oserror(exc, name)
    return Entry(
        name=name,
        type=kind,
        size=st.st_size,
        mode=stat.filemode(st.st_mode),
        mtime=datetime.fromtimestamp(st.st_mtime, tz=UTC),
        target=target,
    )


def list_dir(pid: int, path: str, *, limit: int = 1000) -> Listing:
    """List the directory ``path`` of the container whose init is ``pid``.

    Entries are sorted directories first, then by name; at most ``limit`` are returned
    and ``Listing.truncated`` tells whether there were more (memory stays bounded by
    ``limit`` however large the directory).  Entries are described without following
    them; a symbolic link's text is in ``Entry.target``.
    """
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise ValueError("limit must be a non-negative integer")
    root_fd = _open_root(pid)
    try:
        fd, name = _open_in_root(root_fd, path)
        try:
            st = os.fstat(fd)
            if not stat.S_ISDIR(st.st_mode):
                # The path names a file: say what it is, so the page can offer to download it.
                raise IsAFile(
                    Entry(
                        name=name,
                        type="file" if stat.S_ISREG(st.st_mode) else "other",
                        size=st.st_size,
                        mode=stat.filemode(st.st_mode),
                        mtime=datetime.fromtimestamp(st.st_mtime, tz=UTC),
                        target="",
                    )
                )
            dir_fd = _reopen(fd, os.O_RDONLY | os.O_DIRECTORY, name)
        finally:
            os.close(fd)
    finally:
        os.close(root_fd)
    try:
        total = 0

        def keys(it: Iterator[os.DirEntry[str]]) -> Iterator[tuple[bool, str]]:
            nonlocal total
            for item in it:
                total += 1
                yield (not item.is_dir(follow_symlinks=False), item.name)

        try:
            with os.scandir(dir_fd) as it:
                sort_keys = keys(it)
                chosen = heapq.nsmallest(limit, sort_keys)
                for _ in sort_keys:  # count the rest (nsmallest(0, ...) reads nothing)
                    pass
        except OSError as exc:
            raise _oserror(exc, name)
        entries = [entry for _, item in chosen if (entry := _entry(dir_fd, item)) is not None]
    finally:
        os.close(dir_fd)
    return Listing(path=name, entries=entries, truncated=total > limit)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{n} bytes" if unit == "bytes" else f"{value:.1f} {unit} ({n} bytes)"
        value /= 1024
    raise AssertionError("unreachable")


def read_file(pid: int, path: str, *, max_bytes: int) -> bytes:
    """Return the content of the regular file ``path`` in the container whose init is ``pid``.

    A final symbolic link is followed inside the container root only.  Directories,
    devices, FIFOs and sockets are refused (opening a FIFO could block, a device could
    act), and so is a file larger than ``max_bytes`` (also when it grows while read,
    or is a ``/proc`` file reporting size 0).
    """
    if not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes < 0:
        raise ValueError("max_bytes must be a non-negative integer")
    root_fd = _open_root(pid)
    try:
        fd, name = _open_in_root(root_fd, path)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise RootfsError(f"{name} is {_describe(st.st_mode)}: only regular files can be read")
            if st.st_size > max_bytes:
                raise RootfsError(
                    f"{name} is {_size(st.st_size)}, larger than the {_size(max_bytes)} the console shows"
                )
            file_fd = _reopen(fd, os.O_RDONLY | os.O_NONBLOCK, name)
        finally:
            os.close(fd)
    finally:
        os.close(root_fd)
    try:
        again = os.fstat(file_fd)
        if (again.st_dev, again.st_ino) != (st.st_dev, st.st_ino) or not stat.S_ISREG(again.st_mode):
            raise RootfsError(f"{name}: the file changed while being opened, try again")
        chunks: list[bytes] = []
        size = 0
        while size <= max_bytes:
            try:
                chunk = os.read(file_fd, min(max_bytes + 1 - size, 1 << 20))
            except OSError as exc:
                raise _oserror(exc, name)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(file_fd)
    if size > max_bytes:
        raise RootfsError(f"{name} is larger than the {_size(max_bytes)} the console shows")
    return b"".join(chunks)


# -- writing under a root filesystem directory ----------------------------------------
#
# The agent writes into a container's root filesystem as the host sees it (the ``dir:``
# path of ``lxc.rootfs.path``), also while the container runs and can change anything in
# it.  Each directory on the way is opened relative to the one reached so far without
# following a link (``openat2`` with ``RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS``, or
# ``O_NOFOLLOW`` where the kernel lacks it); a missing one is made with ``mkdirat`` under
# that descriptor.  The file is written under an unpredictable name (``O_CREAT | O_EXCL |
# O_NOFOLLOW`` and a random suffix), its mode set with ``fchmod`` on the descriptor, then
# renamed over the final name with ``renameat`` inside the same directory: ``rename``
# replaces a link planted at the final name instead of following it.  A link (or anything
# but a regular file) found on the way is refused with a message naming it.

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NO_LINKS = _RESOLVE_IN_ROOT | _RESOLVE_NO_SYMLINKS | _RESOLVE_NO_MAGICLINKS


@contextmanager
def root_dir(path: str | os.PathLike[str]) -> Iterator[int]:
    """A descriptor of the root filesystem directory ``path``, for the functions below.

    ``path`` is a host path the container cannot change (the config's ``lxc.rootfs.path``,
    a directory the agent has just made), so it is opened as the host names it; the
    host's own ``/`` is refused.  Closed when the block ends.
    """
    shown = os.fspath(path)
    try:
        fd = os.open(shown, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise RootfsError(f"the root filesystem {shown}: {exc.strerror}", exc.errno) from None
    try:
        if _same_as_host_root(os.fstat(fd)):
            raise RootfsError(f"{shown} is the host's root directory, not a container's root filesystem")
        yield fd
    finally:
        os.close(fd)


def stat_in_root(root_fd: int, path: str) -> tuple[os.stat_result, str] | None:
    """What ``path`` names inside the root of ``root_fd`` (links followed inside it only): its
    stat and its path in the container, or None when it does not resolve there."""
    try:
        fd, name = _open_in_root(root_fd, path)
    except RootfsError:
        return None
    try:
        return os.fstat(fd), name
    finally:
        os.close(fd)


def read_head_in_root(root_fd: int, path: str, max_bytes: int) -> bytes | None:
    """The first ``max_bytes`` of the regular file ``path`` inside the root of ``root_fd`` (links
    followed inside it only, the inode opened is the one resolved), or None when it is not one."""
    try:
        fd, name = _open_in_root(root_fd, path)
    except RootfsError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        file_fd = _reopen(fd, os.O_RDONLY | os.O_NONBLOCK, name)
    except RootfsError:
        return None
    finally:
        os.close(fd)
    try:
        return os.read(file_fd, max_bytes)
    except OSError:
        return None
    finally:
        os.close(file_fd)


def _write_parts(path: str) -> list[str]:
    parts = _split(path)
    if not parts:
        raise RootfsError("a file name is required, not the root directory")
    if ".." in parts:
        raise RootfsError(f"{path}: '..' is not accepted in a path the console writes")
    return parts


def _link_refused(shown: str) -> RootfsError:
    return RootfsError(
        f"{shown} is a symbolic link inside the container: the console never writes through links "
        "(remove it from inside the container, then try again); nothing was written",
        errno.ELOOP,
    )


def _refuse_unless_regular(st: os.stat_result, shown: str) -> None:
    if stat.S_ISLNK(st.st_mode):
        raise _link_refused(shown)
    if not stat.S_ISREG(st.st_mode):
        raise RootfsError(
            f"{shown} is {_describe(st.st_mode)}, not a regular file: the console leaves it alone; "
            "nothing was written"
        )


def _open_step(dir_fd: int, name: str, shown: str) -> int:
    """The directory ``name`` inside ``dir_fd``, opened without following a link."""
    try:
        if _use_openat2():
            return _openat2(dir_fd, name, _DIR_FLAGS, _NO_LINKS)
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        with suppress(OSError):
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                raise _link_refused(shown) from None
            if not stat.S_ISDIR(st.st_mode):
                raise RootfsError(f"{shown} is not a directory; nothing was written", errno.ENOTDIR) from None
        raise _oserror(exc, shown) from None


def _open_parent(root_fd: int, parts: list[str], *, make_dirs: bool, dir_mode: int) -> int:
    """The directory holding ``parts[-1]``, each component opened by :func:`_open_step`."""

    def step(fd: int, depth: int, part: str) -> int:
        shown = _join(parts[:depth])
        if make_dirs:
            try:
                os.mkdir(part, dir_mode, dir_fd=fd)  # mkdirat: a link in its place makes EEXIST
            except FileExistsError:
                pass
            except OSError as exc:
                raise _oserror(exc, shown) from None
        return _open_step(fd, part, shown)

    return _descend(root_fd, parts[:-1], step)


@contextmanager
def _existing_parent(root_fd: int, parts: list[str]) -> Iterator[int | None]:
    """The directory holding ``parts[-1]`` (as :func:`_open_parent`), None when one is missing."""
    try:
        dir_fd: int | None = _open_parent(root_fd, parts, make_dirs=False, dir_mode=0)
    except RootfsError as exc:
        if exc.code != errno.ENOENT:
            raise
        dir_fd = None
    try:
        yield dir_fd
    finally:
        if dir_fd is not None:
            os.close(dir_fd)


def _lstat(dir_fd: int | None, name: str, shown: str) -> os.stat_result | None:
    if dir_fd is None:
        return None
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _oserror(exc, shown) from None


def file_status(root_fd: int, path: str, *, regular: bool = False) -> os.stat_result | None:
    """``lstat`` of ``path`` under the root (directories on the way opened without following
    links, a link among them refused); None when it, or a directory on the way, is missing.

    ``regular``: refuse, as :func:`write_file` and :func:`remove_file` would, anything there
    that is not a regular file (to check before changing something else).
    """
    parts = _write_parts(path)
    with _existing_parent(root_fd, parts) as dir_fd:
        st = _lstat(dir_fd, parts[-1], _join(parts))
    if regular and st is not None:
        _refuse_unless_regular(st, _join(parts))
    return st


def write_file(root_fd: int, path: str, data: bytes, *, mode: int, make_dirs: bool = False) -> None:
    """Replace the regular file ``path`` under the root with ``data`` and ``mode``, atomically.

    Missing directories are made (mode 0755) when ``make_dirs``.  Raises ``RootfsError``,
    with nothing written, when a directory on the way or the file itself is a symbolic link
    or not what it must be.
    """
    parts = _write_parts(path)
    shown, name = _join(parts), parts[-1]
    dir_fd = _open_parent(root_fd, parts, make_dirs=make_dirs, dir_mode=0o755)
    try:
        with suppress(FileNotFoundError):
            _refuse_unless_regular(os.stat(name, dir_fd=dir_fd, follow_symlinks=False), shown)
        tmp = f".{name[:64]}.{secrets.token_hex(8)}.console-tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(tmp, flags, 0o600, dir_fd=dir_fd)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fchmod(fd, mode)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise
    except OSError as exc:
        raise _oserror(exc, shown) from None
    finally:
        os.close(dir_fd)


def remove_file(root_fd: int, path: str) -> bool:
    """Remove the regular file ``path`` under the root; False when it is not there.

    A symbolic link (at the name or on the way) or anything but a regular file is refused.
    """
    parts = _write_parts(path)
    shown = _join(parts)
    with _existing_parent(root_fd, parts) as dir_fd:
        st = _lstat(dir_fd, parts[-1], shown)
        if dir_fd is None or st is None:
            return False
        _refuse_unless_regular(st, shown)
        try:
            os.unlink(parts[-1], dir_fd=dir_fd)  # unlinkat never follows the name
        except OSError as exc:
            raise _oserror(exc, shown) from None
    return True


def make_target(root_fd: int, path: str, *, directory: bool) -> bool:
    """Make ``path`` under the root, a directory or an empty file (mode 0644), with the
    directories on the way, unless it is already there as such; True when it was made.

    What a bind mount needs as its target, made by the agent instead of LXC's ``create=``
    option (which follows a link planted in the container at the next start). A link on the
    way or at the name, or something else of that name, is refused with nothing made.
    """
    parts = _write_parts(path)
    shown, name = _join(parts), parts[-1]
    dir_fd = _open_parent(root_fd, parts, make_dirs=True, dir_mode=0o755)
    try:
        try:
            if directory:
                os.mkdir(name, 0o755, dir_fd=dir_fd)  # mkdirat never follows the name
            else:
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
                os.close(os.open(name, flags, 0o644, dir_fd=dir_fd))
            return True
        except FileExistsError:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            raise _link_refused(shown)
        if directory and not stat.S_ISDIR(st.st_mode):
            raise RootfsError(f"{shown} is not a directory; nothing was made", errno.ENOTDIR)
        if not directory:
            _refuse_unless_regular(st, shown)
        return False
    except OSError as exc:
        raise _oserror(exc, shown) from None
    finally:
        os.close(dir_fd)


def write_hostname(rootfs_dir: str | os.PathLike[str], hostname: str) -> None:
    """Write ``/etc/hostname`` of a new root filesystem (mode 0644) through :func:`write_file`."""
    with root_dir(rootfs_dir) as root_fd:
        write_file(root_fd, "/etc/hostname", f"{hostname}\n".encode(), mode=0o644, make_dirs=True)
