"""containers.drivers.container_fs against real processes confined to a temporary root.

A static busybox is copied into a temporary directory ``R`` and started under
``chroot R``: its ``/proc/<pid>/root`` is ``R``, exactly what a running container's init
gives the console.  A second process also runs in ``R`` but in its own mount namespace
with a procfs mounted on ``R/proc`` (as a container has), to try the ``/proc`` escapes.

Every test runs twice: with ``openat2(RESOLVE_IN_ROOT)`` and with the manual walk.
Tests need root, ``chroot`` and ``/bin/busybox`` (``unshare`` for the procfs ones); when
one is missing they skip, or fail when ``CI=true``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import socket
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from containers.drivers import container_fs
from containers.drivers.container_fs import RootfsError, list_dir, pid_root, read_file, resolve

BUSYBOX = "/bin/busybox"
CAP = 4096
MANY = 1005  # files in R/many, more than the default limit of 1000
REAL_USE_OPENAT2 = container_fs._use_openat2  # before any test replaces it
HOST_CONTENT = b"HOST-SECRET-must-never-be-read"
CONTAINER_CONTENT = b"container-marker"


def _require(ok: bool, why: str) -> None:
    if ok:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{why} (CI=true: this must not be skipped)")
    pytest.skip(why)


def _require_tools(*tools: str) -> None:
    _require(os.geteuid() == 0, "needs root (chroot, mknod)")
    _require(os.path.exists(BUSYBOX), f"{BUSYBOX} missing (Debian package busybox-static)")
    for tool in tools:
        _require(shutil.which(tool) is not None, f"{tool} missing")


@dataclass
class Tree:
    root: Path
    marker: str  # file name, in the host's /tmp and in the container's /tmp
    host_marker: Path


def _build_tree(root: Path, marker: str) -> None:
    (root / "bin").mkdir()
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    (root / "proc").mkdir()  # empty for the plain chroot; procfs in the namespaced ones
    (root / "old").mkdir()  # pivot_root's put_old
    etc = root / "etc"
    etc.mkdir()
    (etc / "passwd-marker").write_text("container-passwd-marker\n")
    (etc / "shadow").write_text("container-shadow")
    (etc / "hostname").write_text("container-hostname\n")
    os.symlink("/etc/shadow", etc / "evil")  # absolute: must be the container's /etc/shadow
    (root / "tmp").mkdir()
    (root / "tmp" / marker).write_bytes(CONTAINER_CONTENT)
    os.symlink("../../../../..", root / "up")
    os.symlink("/proc/1/root", root / "proc-escape")
    os.symlink("/proc/self/root", root / "self-escape")
    os.symlink(f"/tmp/{marker}", root / "tmp-link")
    os.symlink("../" * 12 + f"tmp/{marker}", root / "tmp-rel")
    os.symlink("loop-b", root / "loop-a")
    os.symlink("loop-a", root / "loop-b")
    os.symlink("self", root / "self")
    os.symlink("etc", root / "etc-link")
    os.symlink("etc/passwd-marker", root / "file-link")
    deep = root / "deep" / "a" / "b"
    deep.mkdir(parents=True)
    (deep / "leaf.txt").write_text("leaf")
    os.symlink("../../../../../../etc", deep / "up2")
    os.symlink("deep/a/b", root / "deep-link")
    # A chain of links: chain/l0 -> l1 -> ... -> l44 -> ../etc/passwd-marker
    chain = root / "chain"
    chain.mkdir()
    for i in range(45):
        os.symlink(f"l{i + 1}", chain / f"l{i}")
    os.symlink("../etc/passwd-marker", chain / "l45")
    os.mkfifo(root / "fifo")
    (root / "big").write_bytes(b"x" * (CAP + 1))
    (root / "exact").write_bytes(b"y" * CAP)
    (root / "empty").write_bytes(b"")
    many = root / "many"
    many.mkdir()
    for i in range(MANY):
        (many / f"f{i:05d}").write_bytes(b"")
    for name in ("zdir", "adir", "mdir"):
        (many / name).mkdir()
    (root / os.fsdecode(b"caf\xe9")).write_bytes(b"latin-1 name")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(root / "sock"))
    finally:
        sock.close()
    with contextlib.suppress(PermissionError):  # the test using it checks it exists
        os.mknod(root / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Iterator[Tree]:
    _require_tools("chroot")
    root = tmp_path_factory.mktemp("rootfs")
    marker = f"rootfs-marker-{uuid.uuid4().hex}"
    host_marker = Path("/tmp") / marker
    host_marker.write_bytes(HOST_CONTENT)
    try:
        _build_tree(root, marker)
        yield Tree(root=root, marker=marker, host_marker=host_marker)
    finally:
        host_marker.unlink(missing_ok=True)
        shutil.rmtree(root, ignore_errors=True)


def _wait_confined(proc: subprocess.Popen, root: Path, *, procfs: bool = False) -> None:
    """Wait until the process's root is R (and, if asked, a procfs is mounted on R/proc)."""
    want = os.stat(root)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"confined process exited early with {proc.returncode}")
        try:
            st = os.stat(f"/proc/{proc.pid}/root")
            proc_dev = os.stat(f"/proc/{proc.pid}/root/proc").st_dev
        except OSError:
            pass
        else:
            if (st.st_dev, st.st_ino) == (want.st_dev, want.st_ino) and (
                not procfs or proc_dev != want.st_dev
            ):
                return
        time.sleep(0.02)
    raise AssertionError("the confined process never reached its root")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def pid(tree) -> Iterator[int]:
    """A process chrooted to R: its /proc/<pid>/root is R."""
    proc = subprocess.Popen(["chroot", str(tree.root), "/bin/busybox", "sleep", "600"])
    try:
        _wait_confined(proc, tree.root)
        yield proc.pid
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def proc_pid(tree) -> Iterator[int]:
    """A process in R with its own mount namespace and the host's procfs on R/proc."""
    _require_tools("chroot", "unshare")
    script = "/bin/busybox mount -t proc proc /proc && exec /bin/busybox sleep 600"
    proc = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private"]
        + ["chroot", str(tree.root), "/bin/busybox", "sh", "-c", script]
    )
    try:
        _wait_confined(proc, tree.root, procfs=True)
        yield proc.pid
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def pivot_pid(tree) -> Iterator[int]:
    """Like an LXC container: own mount namespace, pivot_root into R, host root detached.

    Its /proc/<pid>/root reads "/" from the host, and so do the kernel's names of the
    files under it (they are not reachable from the host's root).
    """
    _require_tools("unshare")
    inner = (
        "/bin/busybox umount -l /old && /bin/busybox mount -t proc proc /proc && exec /bin/busybox sleep 600"
    )
    script = (
        f"/bin/busybox mount --bind {tree.root} {tree.root} && cd {tree.root}"
        " && /bin/busybox pivot_root . old && cd /"
        f" && exec /bin/busybox chroot . /bin/busybox sh -c '{inner}'"
    )
    proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", BUSYBOX, "sh", "-c", script])
    try:
        _wait_confined(proc, tree.root, procfs=True)
        yield proc.pid
    finally:
        _stop(proc)


@pytest.fixture(params=["openat2", "walk"], autouse=True)
def strategy(request, monkeypatch) -> str:
    if request.param == "openat2":
        if not container_fs._use_openat2():
            pytest.skip("this kernel has no openat2(RESOLVE_IN_ROOT); the walk is tested")
    else:
        monkeypatch.setattr(container_fs, "_use_openat2", lambda: False)
    return request.param


@pytest.fixture
def alarm() -> Iterator[None]:
    """Fail instead of hanging forever if something opens a FIFO."""

    def boom(signum, frame):
        raise AssertionError("blocked: a FIFO was opened")

    previous = signal.signal(signal.SIGALRM, boom)
    signal.alarm(10)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _read(pid: int, path: str, cap: int = CAP) -> bytes:
    return read_file(pid, path, max_bytes=cap)


def _never_host(pid: int, path: str) -> bytes | None:
    """Read ``path``: a refusal is fine, the host's content never is."""
    try:
        data = _read(pid, path)
    except RootfsError:
        return None
    assert data != HOST_CONTENT, f"{path} reached the host's file"
    return data


# -- pid_root -------------------------------------------------------------------------


def test_pid_root_of_a_confined_process(pid):
    assert pid_root(pid) == f"/proc/{pid}/root"


@pytest.mark.parametrize("bad", [0, -1, True, "1", 1.0, None])
def test_pid_must_be_a_positive_int(bad):
    for call in (lambda: pid_root(bad), lambda: resolve(bad, "/"), lambda: list_dir(bad, "/")):
        with pytest.raises(RootfsError, match="positive integer"):
            call()


def test_missing_process_is_not_running():
    missing = 2**22 + 12345  # above pid_max's default 4194304: never a live PID
    with pytest.raises(RootfsError, match="the container is not running") as info:
        pid_root(missing)
    assert info.value.message == "the container is not running"
    with pytest.raises(RootfsError, match="not running"):
        read_file(missing, "/etc/passwd", max_bytes=CAP)


def test_a_process_sharing_the_host_root_is_refused():
    # The test process (like a host process reusing a dead container's PID) has the
    # host's root: browsing it would expose the host.
    with pytest.raises(RootfsError, match="not in a container"):
        pid_root(os.getpid())
    with pytest.raises(RootfsError, match="not in a container"):
        resolve(os.getpid(), "/etc/passwd")


def test_an_exited_process_is_not_running(tree):
    proc = subprocess.Popen(["chroot", str(tree.root), "/bin/busybox", "sleep", "600"])
    try:
        _wait_confined(proc, tree.root)
        assert resolve(proc.pid, "/etc") == "/etc"
    finally:
        _stop(proc)
    with pytest.raises(RootfsError, match="not running"):
        resolve(proc.pid, "/etc")


# -- path validation ------------------------------------------------------------------


def test_nul_byte_is_refused(pid):
    with pytest.raises(RootfsError, match="NUL"):
        resolve(pid, "/etc/passwd-marker\x00")
    with pytest.raises(RootfsError, match="NUL"):
        read_file(pid, "/etc\x00/../tmp", max_bytes=CAP)


def test_too_long_and_non_string_paths_are_refused(pid):
    with pytest.raises(RootfsError, match="too long"):
        resolve(pid, "/" + "a/" * 2049)
    with pytest.raises(RootfsError, match="string"):
        resolve(pid, b"/etc")
    with pytest.raises(RootfsError, match="string"):
        resolve(pid, None)
    # exactly 4096 bytes still resolve
    assert resolve(pid, "/" + "./" * 2046 + "etc") == "/etc"


def test_paths_are_normalised(pid):
    assert resolve(pid, "/") == "/"
    assert resolve(pid, "") == "/"
    assert resolve(pid, ".") == "/"
    assert resolve(pid, "//etc///./passwd-marker") == "/etc/passwd-marker"
    assert resolve(pid, "etc/passwd-marker") == "/etc/passwd-marker"
    assert resolve(pid, "/etc/") == "/etc"


# -- resolution stays inside the root -------------------------------------------------


def test_plain_file(pid):
    assert resolve(pid, "/etc/passwd-marker") == "/etc/passwd-marker"
    assert _read(pid, "/etc/passwd-marker") == b"container-passwd-marker\n"
    assert _read(pid, "/deep/a/b/leaf.txt") == b"leaf"
    assert _read(pid, "/empty") == b""


@pytest.mark.parametrize(
    "path",
    [
        "/..",
        "/../..",
        "..",
        "../../../../../../../../..",
        "/etc/../../..",
        "/up",
        "/up/..",
        "/up/up/up",
        "/deep/a/b/../../../../../..",
    ],
)
def test_dotdot_stays_at_the_root(pid, path):
    assert resolve(pid, path) == "/"


@pytest.mark.parametrize(
    "path",
    [
        "../../etc/passwd-marker",
        "/../../../../etc/passwd-marker",
        "etc/../../../etc/passwd-marker",
        "/up/etc/passwd-marker",
        "/up/../../up/etc/passwd-marker",
        "/deep/a/b/up2/passwd-marker",
        "/etc-link/passwd-marker",
        "/file-link",
        "/chain/l6",
    ],
)
def test_climbing_inputs_read_the_container_file(pid, path):
    assert resolve(pid, path) == "/etc/passwd-marker"
    assert _read(pid, path) == b"container-passwd-marker\n"


def test_absolute_symlink_is_taken_from_the_container_root(pid):
    assert resolve(pid, "/etc/evil") == "/etc/shadow"
    assert _read(pid, "/etc/evil") == b"container-shadow"
    assert _read(pid, "/up/etc/evil") == b"container-shadow"


def test_dotdot_after_a_symlink_follows_the_link_like_the_kernel(pid):
    # /deep-link -> deep/a/b, so /deep-link/.. is /deep/a (not "/" as a lexical clean gives)
    assert resolve(pid, "/deep-link/..") == "/deep/a"
    assert resolve(pid, "/deep-link/../b/leaf.txt") == "/deep/a/b/leaf.txt"
    assert resolve(pid, "/deep/a/b/up2/..") == "/"


def test_host_marker_is_never_reached(pid, tree):
    assert tree.host_marker.read_bytes() == HOST_CONTENT  # it is there, on the host
    host_path_of_root = str(tree.root)
    for path in (
        f"../../../tmp/{tree.marker}",
        f"/../../../../../../../tmp/{tree.marker}",
        f"/up/../../tmp/{tree.marker}",
        "/tmp-link",
        "/tmp-rel",
        f"/etc/../up/../tmp/{tree.marker}",
    ):
        assert resolve(pid, path) == f"/tmp/{tree.marker}", path
        assert _read(pid, path) == CONTAINER_CONTENT, path
    # R's host path does not exist inside R
    with pytest.raises(RootfsError, match="no such file"):
        _read(pid, f"{host_path_of_root}/etc/passwd-marker")
    with pytest.raises(RootfsError, match="no such file"):
        _read(pid, f"/../{'../' * 10}{host_path_of_root.lstrip('/')}/etc/passwd-marker")


def test_a_deleted_container_file_is_not_found_even_if_the_host_has_it(pid, tree):
    inside = tree.root / "tmp" / tree.marker
    inside.unlink()
    try:
        for path in (f"/tmp/{tree.marker}", "/tmp-link", "/tmp-rel", f"../../tmp/{tree.marker}"):
            with pytest.raises(RootfsError, match="no such file"):
                _read(pid, path)
    finally:
        inside.write_bytes(CONTAINER_CONTENT)


def test_proc_link_without_procfs_is_not_found(pid):
    # R/proc is empty for this process: /proc/1/root does not exist in the container
    for path in ("/proc-escape", "/proc-escape/etc/passwd", "/self-escape/etc", "/proc/1/root"):
        with pytest.raises(RootfsError, match="no such file"):
            resolve(pid, path)


def test_symlink_loops_are_refused(pid):
    for path in ("/loop-a", "/loop-b", "/self", "/loop-a/etc", "/chain/l0"):
        with pytest.raises(RootfsError, match="symbolic links") as info:
            resolve(pid, path)
        assert "symbolic links" in info.value.message


def test_forty_links_are_followed_and_the_forty_first_is_refused(pid):
    # /chain/lN follows the links lN, ..., l45 (l45 -> ../etc/passwd-marker): 46 - N links
    assert resolve(pid, "/chain/l6") == "/etc/passwd-marker"  # 40 links
    with pytest.raises(RootfsError, match="symbolic links"):
        resolve(pid, "/chain/l5")  # 41 links


def test_a_file_is_not_a_directory(pid):
    with pytest.raises(RootfsError, match="not a directory"):
        resolve(pid, "/etc/passwd-marker/x")
    with pytest.raises(RootfsError, match="not a directory"):
        resolve(pid, "/file-link/..")
    # Listing a file says what it is (the page offers to download it), without reading it.
    with pytest.raises(container_fs.IsAFile) as found:
        list_dir(pid, "/etc/passwd-marker")
    assert (found.value.entry.type, found.value.entry.name) == ("file", "/etc/passwd-marker")


def test_missing_component(pid):
    with pytest.raises(RootfsError, match="no such file") as info:
        resolve(pid, "/nope/../etc")
    assert info.value.message.startswith("/nope/../etc")


def test_non_utf8_names_round_trip(pid):
    name = os.fsdecode(b"caf\xe9")
    assert name in {e.name for e in list_dir(pid, "/").entries}
    assert _read(pid, "/" + name) == b"latin-1 name"


# -- /proc inside the container ------------------------------------------------------


def test_proc_magic_links_never_reach_the_host(proc_pid, tree, strategy):
    # Here R/proc is a real procfs showing the host's PIDs: /proc/<host pid>/root is the
    # host's "/" (this test process is such a host process; /proc/1 may be out of reach).
    me = os.getpid()
    assert resolve(proc_pid, f"/proc/{me}") == f"/proc/{me}"
    assert os.readlink(f"/proc/{proc_pid}/root/proc/{me}/root") == "/"  # the host root, really
    paths = [
        f"/proc/{me}/root/tmp/{tree.marker}",
        f"/proc/{me}/cwd/../../../tmp/{tree.marker}",
        f"/proc/self/root/tmp/{tree.marker}",
        f"/self-escape/tmp/{tree.marker}",
        f"/proc/thread-self/root/tmp/{tree.marker}",
        f"/proc/1/root/tmp/{tree.marker}",
        f"/proc-escape/tmp/{tree.marker}",
    ]
    for path in paths:
        data = _never_host(proc_pid, path)
        if strategy == "openat2":
            # the kernel refuses magic links outright
            assert data is None, path
        else:
            # the walk only uses the link's text, resolved inside the root
            assert data in (None, CONTAINER_CONTENT), path
    if strategy == "walk":
        assert _read(proc_pid, f"/proc/{me}/root/tmp/{tree.marker}") == CONTAINER_CONTENT
        assert _read(proc_pid, f"/self-escape/tmp/{tree.marker}") == CONTAINER_CONTENT
        assert resolve(proc_pid, "/self-escape/etc/hostname") == "/etc/hostname"
    else:
        for path in ("/self-escape", f"/proc/{me}/root", f"/proc/{me}/root/etc/hostname"):
            with pytest.raises(RootfsError, match="refuses"):
                resolve(proc_pid, path)


def test_proc_files_are_read_within_the_cap(proc_pid):
    # procfs files report size 0 but have content: the cap still applies while reading
    assert b"Name:" in _read(proc_pid, "/proc/1/status", cap=1 << 20)
    with pytest.raises(RootfsError, match="larger than"):
        _read(proc_pid, "/proc/1/status", cap=8)


def test_the_plain_chroot_does_not_see_the_namespaced_procfs(pid, proc_pid):
    assert resolve(proc_pid, "/proc/1") == "/proc/1"
    with pytest.raises(RootfsError, match="no such file"):
        resolve(pid, "/proc/1")


def test_pivoted_container_like_lxc(pivot_pid, tree, strategy):
    assert os.readlink(f"/proc/{pivot_pid}/root") == "/"
    assert pid_root(pivot_pid) == f"/proc/{pivot_pid}/root"
    assert resolve(pivot_pid, "/") == "/"
    assert resolve(pivot_pid, "/etc/evil") == "/etc/shadow"
    assert resolve(pivot_pid, "/deep-link/../b/leaf.txt") == "/deep/a/b/leaf.txt"
    assert _read(pivot_pid, "/up/etc/evil") == b"container-shadow"
    for path in (f"../../tmp/{tree.marker}", "/tmp-link", "/tmp-rel"):
        assert _read(pivot_pid, path) == CONTAINER_CONTENT
    assert list_dir(pivot_pid, "/old").entries == []  # the host root was detached
    assert list_dir(pivot_pid, "/up/etc-link").path == "/etc"
    me = os.getpid()
    for path in (f"/proc/{me}/root/tmp/{tree.marker}", f"/self-escape/tmp/{tree.marker}"):
        assert _never_host(pivot_pid, path) in (None, CONTAINER_CONTENT)


def test_names_fall_back_to_the_walk_when_the_kernel_name_is_unusable(pid, monkeypatch):
    monkeypatch.setattr(container_fs, "_container_path", lambda root_fd, fd: None)
    assert resolve(pid, "/up/etc/evil") == "/etc/shadow"
    assert list_dir(pid, "/deep-link/..").path == "/deep/a"
    assert _read(pid, "/etc/evil") == b"container-shadow"


# -- list_dir -------------------------------------------------------------------------


def test_list_root(pid, tree):
    listing = list_dir(pid, "/")
    assert listing.path == "/"
    assert listing.truncated is False
    by_name = {e.name: e for e in listing.entries}
    assert by_name["etc"].type == "dir"
    assert by_name["etc"].mode.startswith("d")
    assert by_name["big"].type == "file"
    assert by_name["big"].size == CAP + 1
    assert by_name["big"].mode == stat.filemode(os.lstat(tree.root / "big").st_mode)
    assert by_name["big"].target is None
    assert by_name["up"].type == "symlink"
    assert by_name["up"].target == "../../../../.."
    assert by_name["up"].mode.startswith("l")
    assert by_name["tmp-link"].target == f"/tmp/{tree.marker}"
    assert by_name["fifo"].type == "other"
    assert by_name["fifo"].mode.startswith("p")
    assert by_name["sock"].type == "other"
    assert by_name["sock"].mode.startswith("s")
    mtime = by_name["big"].mtime
    assert isinstance(mtime, datetime)
    assert mtime.tzinfo is not None and mtime.utcoffset().total_seconds() == 0
    assert abs(mtime.timestamp() - os.lstat(tree.root / "big").st_mtime) < 1e-3
    names = [e.name for e in listing.entries]
    dirs = [e.name for e in listing.entries if e.type == "dir"]
    assert names[: len(dirs)] == sorted(dirs)  # directories first, sorted
    assert names[len(dirs) :] == sorted(names[len(dirs) :])
    assert "." not in names and ".." not in names


def test_list_through_symlinks_and_dotdot(pid):
    etc = list_dir(pid, "/up/etc-link")
    assert etc.path == "/etc"
    assert {"passwd-marker", "shadow", "evil"} <= {e.name for e in etc.entries}
    assert list_dir(pid, "/../../..").path == "/"
    assert list_dir(pid, "/deep-link/..").path == "/deep/a"


def test_listing_is_truncated_at_the_limit(pid):
    listing = list_dir(pid, "/many")
    assert listing.truncated is True
    assert len(listing.entries) == 1000
    assert [e.name for e in listing.entries[:3]] == ["adir", "mdir", "zdir"]
    assert [e.type for e in listing.entries[:3]] == ["dir"] * 3
    assert listing.entries[3].name == "f00000"
    assert listing.entries[-1].name == "f00996"

    full = list_dir(pid, "/many", limit=2000)
    assert full.truncated is False
    assert len(full.entries) == MANY + 3

    exact = list_dir(pid, "/many", limit=MANY + 3)
    assert exact.truncated is False and len(exact.entries) == MANY + 3

    small = list_dir(pid, "/many", limit=2)
    assert small.truncated is True
    assert [e.name for e in small.entries] == ["adir", "mdir"]

    assert list_dir(pid, "/many", limit=0) == container_fs.Listing("/many", [], True)
    with pytest.raises(ValueError):
        list_dir(pid, "/many", limit=-1)


def test_list_missing_directory(pid):
    with pytest.raises(RootfsError, match="no such file"):
        list_dir(pid, "/missing")
    with pytest.raises(RootfsError, match="symbolic links"):
        list_dir(pid, "/loop-a")


# -- read_file ------------------------------------------------------------------------


def test_fifo_is_refused_without_blocking(pid, alarm):
    with pytest.raises(RootfsError, match="FIFO") as info:
        _read(pid, "/fifo")
    assert "only regular files" in info.value.message
    os.symlink("/fifo", Path(f"/proc/{pid}/root") / "fifo-link")
    try:
        with pytest.raises(RootfsError, match="FIFO"):
            _read(pid, "/up/fifo-link")
    finally:
        os.unlink(Path(f"/proc/{pid}/root") / "fifo-link")


def test_socket_and_device_are_refused(pid, tree, alarm):
    with pytest.raises(RootfsError, match="socket"):
        _read(pid, "/sock")
    if not (tree.root / "null").exists():
        _require(False, "mknod is not permitted here")
    with pytest.raises(RootfsError, match="character device"):
        _read(pid, "/null")
    assert {e.name: e.type for e in list_dir(pid, "/").entries}["null"] == "other"


def test_directory_is_refused(pid):
    with pytest.raises(RootfsError, match="directory"):
        _read(pid, "/etc")
    with pytest.raises(RootfsError, match="directory"):
        _read(pid, "/up")


def test_large_file_is_refused_with_size_and_cap(pid):
    with pytest.raises(RootfsError) as info:
        _read(pid, "/big")
    message = info.value.message
    assert "/big" in message
    assert str(CAP + 1) in message
    assert str(CAP) in message.replace(str(CAP + 1), "")
    assert _read(pid, "/exact") == b"y" * CAP  # exactly the cap is fine
    assert _read(pid, "/big", cap=CAP + 1) == b"x" * (CAP + 1)
    with pytest.raises(ValueError):
        read_file(pid, "/big", max_bytes=-1)


def test_reading_errors(pid):
    with pytest.raises(RootfsError, match="no such file"):
        _read(pid, "/etc/missing")
    with pytest.raises(RootfsError, match="symbolic links"):
        _read(pid, "/loop-b")


# -- openat2 probe -------------------------------------------------------------------


@pytest.mark.parametrize("code", [errno.ENOSYS, errno.EPERM])
def test_kernel_without_openat2_falls_back_to_the_walk(pid, monkeypatch, code):
    def missing(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(container_fs, "_openat2_ok", None)
    monkeypatch.setattr(container_fs, "_openat2", missing)
    monkeypatch.setattr(container_fs, "_use_openat2", REAL_USE_OPENAT2)
    assert container_fs._use_openat2() is False
    assert resolve(pid, "/up/etc/evil") == "/etc/shadow"
    assert _read(pid, "/tmp-link") == CONTAINER_CONTENT


# -- no descriptor leaks -----------------------------------------------------------


def test_no_file_descriptor_leaks(pid, tree):
    def calls():
        resolve(pid, "/up/etc/evil")
        resolve(pid, "/deep-link/../b/leaf.txt")
        list_dir(pid, "/up/etc-link")
        _read(pid, "/tmp-rel")
        for bad in ("/loop-a", "/chain/l0", "/etc/passwd-marker/x", "/missing", "/fifo", "/big", "/etc"):
            with pytest.raises(RootfsError):
                _read(pid, bad)
        with pytest.raises(container_fs.IsAFile):
            list_dir(pid, "/file-link")
        with pytest.raises(RootfsError):
            resolve(os.getpid(), "/")

    calls()  # warm up (the openat2 probe, libc)
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        calls()
    assert len(os.listdir("/proc/self/fd")) == before


# -- both strategies agree ------------------------------------------------------------


def test_openat2_and_walk_agree(pid, monkeypatch, strategy):
    if strategy != "openat2":
        pytest.skip("compares openat2 with the walk: runs in the openat2 variant")
    paths = [
        "/",
        "/etc/evil",
        "/up/etc-link/../deep-link/../b/leaf.txt",
        "/tmp-rel",
        "/deep/a/b/up2",
        "/chain/l6",
        "/deep-link/..",
    ]
    with_openat2 = [resolve(pid, p) for p in paths]
    monkeypatch.setattr(container_fs, "_use_openat2", lambda: False)
    assert [resolve(pid, p) for p in paths] == with_openat2


# -- writes under a root filesystem directory (hooks, /etc/hostname) -----------------


@pytest.fixture
def planted(tmp_path) -> tuple[Path, Path, Path]:
    """A root filesystem directory and, outside it, a host file and a host directory that
    links planted inside the root point to (as an operator attached to the container would)."""
    root = tmp_path / "rootfs"
    (root / "usr" / "local" / "lib").mkdir(parents=True)
    (root / "etc").mkdir()
    host_file = tmp_path / "host-file"
    host_file.write_bytes(HOST_CONTENT)
    host_file.chmod(0o600)
    host_dir = tmp_path / "host-dir"
    host_dir.mkdir()
    return root, host_file, host_dir


HOOK = "/usr/local/lib/lxc-console/hook-start"


def _write(root: Path, path: str, data: bytes = b"#!/bin/sh\n", **kw) -> None:
    with container_fs.root_dir(root) as fd:
        container_fs.write_file(fd, path, data, mode=0o750, make_dirs=True, **kw)


def _untouched(host_file: Path, host_dir: Path) -> None:
    assert host_file.read_bytes() == HOST_CONTENT
    assert stat.S_IMODE(host_file.stat().st_mode) == 0o600
    assert os.listdir(host_dir) == []


def test_write_makes_the_directories_and_an_atomic_file_with_its_mode(planted):
    root, host_file, host_dir = planted
    _write(root, HOOK, b"#!/bin/sh\necho one\n")
    _write(root, HOOK, b"#!/bin/sh\necho two\n")
    target = root / HOOK.lstrip("/")
    assert target.read_bytes() == b"#!/bin/sh\necho two\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o750
    assert os.listdir(target.parent) == ["hook-start"]  # no temporary file left behind


@pytest.mark.parametrize("link_at", ["/usr/local/lib/lxc-console", "/usr/local", "/usr"])
def test_a_linked_directory_on_the_way_is_refused(planted, link_at):
    root, host_file, host_dir = planted
    shutil.rmtree(root / link_at.lstrip("/"), ignore_errors=True)
    os.symlink(host_dir, root / link_at.lstrip("/"))
    with pytest.raises(RootfsError, match=f"^{link_at} is a symbolic link inside the container"):
        _write(root, HOOK)
    _untouched(host_file, host_dir)


@pytest.mark.parametrize("text", ["absolute", "relative"])
def test_a_link_at_the_file_name_is_refused(planted, text):
    root, host_file, host_dir = planted
    (root / "usr/local/lib/lxc-console").mkdir()
    link = root / HOOK.lstrip("/")
    os.symlink(host_file if text == "absolute" else os.path.relpath(host_file, link.parent), link)
    with pytest.raises(
        RootfsError, match=f"^{HOOK} is a symbolic link inside the container.*nothing was written"
    ):
        _write(root, HOOK)
    _untouched(host_file, host_dir)
    assert link.is_symlink()


def test_a_link_at_the_old_temporary_name_is_never_used(planted):
    root, host_file, host_dir = planted
    (root / "usr/local/lib/lxc-console").mkdir()
    os.symlink(host_file, root / "usr/local/lib/lxc-console/.hook-start.console-tmp")
    _write(root, HOOK, b"#!/bin/sh\n")
    _untouched(host_file, host_dir)
    assert (root / HOOK.lstrip("/")).read_bytes() == b"#!/bin/sh\n"


def test_what_is_not_a_directory_or_a_file_is_refused(planted):
    root, host_file, host_dir = planted
    (root / "usr/local/lib/lxc-console").write_text("a file")
    with pytest.raises(RootfsError, match="^/usr/local/lib/lxc-console is not a directory"):
        _write(root, HOOK)
    (root / "usr/local/lib/lxc-console").unlink()
    (root / HOOK.lstrip("/")).mkdir(parents=True)
    with pytest.raises(RootfsError, match=f"^{HOOK} is a directory, not a regular file"):
        _write(root, HOOK)
    with pytest.raises(RootfsError, match="'..' is not accepted"):
        _write(root, "/usr/../etc/x")
    with pytest.raises(RootfsError, match="host's root directory"), container_fs.root_dir("/"):
        pass


def test_remove_refuses_links_and_removes_files(planted):
    root, host_file, host_dir = planted
    with container_fs.root_dir(root) as fd:
        assert container_fs.remove_file(fd, HOOK) is False  # nothing there
    (root / "usr/local/lib/lxc-console").mkdir()
    os.symlink(host_file, root / HOOK.lstrip("/"))
    with container_fs.root_dir(root) as fd:
        with pytest.raises(RootfsError, match="symbolic link"):
            container_fs.file_status(fd, HOOK, regular=True)
        with pytest.raises(RootfsError, match="symbolic link"):
            container_fs.remove_file(fd, HOOK)
    assert (root / HOOK.lstrip("/")).is_symlink()
    # a linked directory whose host twin holds a file of the same name
    shutil.rmtree(root / "usr/local/lib/lxc-console")
    os.symlink(host_dir, root / "usr/local/lib/lxc-console")
    (host_dir / "hook-start").write_text("host")
    with container_fs.root_dir(root) as fd, pytest.raises(RootfsError, match="symbolic link"):
        container_fs.remove_file(fd, HOOK)
    assert (host_dir / "hook-start").read_text() == "host"
    (root / "usr/local/lib/lxc-console").unlink()
    _write(root, HOOK)
    with container_fs.root_dir(root) as fd:
        assert container_fs.remove_file(fd, HOOK) is True
    assert not (root / HOOK.lstrip("/")).exists()


def test_hostname_is_never_written_through_a_link(planted):
    root, host_file, host_dir = planted
    os.symlink(host_file, root / "etc" / "hostname")
    with pytest.raises(RootfsError, match="^/etc/hostname is a symbolic link"):
        container_fs.write_hostname(root, "web")
    (root / "etc" / "hostname").unlink()
    (root / "etc").rmdir()
    os.symlink(host_dir, root / "etc")
    with pytest.raises(RootfsError, match="^/etc is a symbolic link"):
        container_fs.write_hostname(root, "web")
    _untouched(host_file, host_dir)
    (root / "etc").unlink()
    container_fs.write_hostname(root, "web")
    assert (root / "etc" / "hostname").read_text() == "web\n"


def test_mount_targets_are_made_without_following_links(planted):
    root, host_file, host_dir = planted
    with container_fs.root_dir(root) as fd:
        assert container_fs.make_target(fd, "mnt/data/deep", directory=True) is True
        assert container_fs.make_target(fd, "mnt/data/deep", directory=True) is False  # already there
        assert container_fs.make_target(fd, "mnt/file", directory=False) is True
        assert (root / "mnt/file").read_bytes() == b"" and (root / "mnt/data/deep").is_dir()
        with pytest.raises(RootfsError, match="^/mnt/file is not a directory"):
            container_fs.make_target(fd, "mnt/file", directory=True)
        os.symlink(host_dir, root / "mnt" / "linked-dir")
        os.symlink(host_file, root / "mnt" / "linked-file")
        for path, directory, shown in (
            ("mnt/linked-dir", True, "/mnt/linked-dir"),
            ("mnt/linked-dir/x", True, "/mnt/linked-dir"),
            ("mnt/linked-file", False, "/mnt/linked-file"),
            ("mnt/linked-dir/y", False, "/mnt/linked-dir"),
        ):
            with pytest.raises(RootfsError, match=f"^{shown} is a symbolic link inside the container"):
                container_fs.make_target(fd, path, directory=directory)
    _untouched(host_file, host_dir)
