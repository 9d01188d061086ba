"""A running container's figures read from the kernel's files instead of one process per figure.

``lxc-info`` and ``lxc-cgroup`` ask the container's monitor over its command socket and read the
same cgroup files; the agent reads them itself: a sync of 40 running containers costs no process
instead of 240. What is read, and what ``lxc-info -H`` prints from it (compared to the byte on this
host's cgroup v1 in ``tests/host/test_cgroupfs.py``):

=============  ======================================  ====================================
lxc-info       cgroup v1                               cgroup v2
=============  ======================================  ====================================
CPU use        ``cpuacct.usage`` (ns)                  ``cpu.stat`` usage_usec × 1000
BlkIO use      ``blkio.throttle.io_service_bytes``     ``io.stat`` rbytes + wbytes
               "Total"
Memory use     ``memory.usage_in_bytes``               ``memory.current``
KMem use       ``memory.kmem.usage_in_bytes``          (none)
TX / RX bytes  the container's interface in ``/proc/PID/net/dev`` (its own side: what it sent
               and received), as lxc-info reports the host side of its veth the other way round
=============  ======================================  ====================================

The container's cgroup is found from its init's ``/proc/PID/cgroup``; its last component must be
LXC's ``lxc.payload.NAME`` (the default ``lxc.cgroup.pattern``), or ``lxc.payload.NAME-N`` (LXC
adds ``-1``, ``-2``, ... when a container of the same name on another LXC path of the host holds
the plain one), or nothing is read: a pid reused by another process is never taken for the
container. These are kernel files (procfs, cgroupfs), never paths inside the container's root
filesystem. Every reader returns None when it cannot read, and callers fall back to the ``lxc-*``
tools.
"""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache

# Key of the unified (v2) hierarchy in the maps below.
UNIFIED = ""


@lru_cache(maxsize=1)
def mounts() -> dict[str, str]:
    """Where each cgroup hierarchy is mounted: {controller or "name=x": mount point, "": v2}.

    Read once per agent from /proc/self/mountinfo (a hierarchy mounted twice keeps its first)."""
    found: dict[str, str] = {}
    try:
        with open("/proc/self/mountinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return found
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        fstype, options, mount_point = tail[0], tail[2], fields[4].replace("\\040", " ")
        if fstype == "cgroup2":
            found.setdefault(UNIFIED, mount_point)
        elif fstype == "cgroup":
            for option in options.split(","):
                if option not in ("rw", "ro") and "relatime" not in option and option != "noexec":
                    found.setdefault(option, mount_point)
    return found


def cgroups_of(pid: int) -> dict[str, str]:
    """{controller: path} of process ``pid`` ("" for the v2 hierarchy); {} if it is gone."""
    text = _read(f"/proc/{int(pid)}/cgroup")
    if text is None:
        return {}
    out: dict[str, str] = {}
    for line in text.splitlines():
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        for controller in controllers.split(",") if controllers else [UNIFIED]:
            out[controller] = path
    return out


def container_dirs(pid: int, name: str) -> dict[str, str] | None:
    """{controller: directory} of the container whose init is ``pid``, or None when ``pid`` is not
    in ``lxc.payload.NAME`` or ``lxc.payload.NAME-N`` (it ended, or its pid now belongs to another
    process)."""
    groups = cgroups_of(pid)
    payload = f"lxc.payload.{name}"
    where = mounts()
    dirs = {}
    for controller, path in groups.items():
        mount = where.get(controller)
        if mount is None or not path.startswith("/"):
            continue
        leaf = os.path.basename(path.rstrip("/"))
        if leaf != payload and not _suffixed(leaf, payload):
            continue
        dirs[controller] = os.path.join(mount, path.lstrip("/"))
    return dirs or None


def _suffixed(leaf: str, payload: str) -> bool:
    """``leaf`` is ``payload`` with LXC's ``-N`` (the name was taken by another LXC path's container)."""
    head, _, number = leaf.rpartition("-")
    return head == payload and number.isascii() and number.isdigit()


def _read_bytes(path: str) -> bytes | None:
    """A kernel file's content, or None. Plain ``os.open``/``os.read``: a third of ``open()``'s
    cost (no buffered text wrapper), which counts at six files per running container every few
    seconds."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    chunks = []
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    return b"".join(chunks)


def _read(path: str) -> str | None:
    data = _read_bytes(path)
    return None if data is None else data.decode("utf-8", "replace")


def _number(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() else None


def _keyed(text: str | None) -> dict[str, int]:
    """``key value`` lines (cpu.stat) into a dict of the numeric ones."""
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            out[key] = int(value)
    return out


def _io_v2(text: str | None) -> int | None:
    if text is None:
        return None
    total = 0
    for line in text.splitlines():
        for item in line.split()[1:]:
            key, _, value = item.partition("=")
            if key in ("rbytes", "wbytes") and value.isdigit():
                total += int(value)
    return total


def _io_v1(text: str | None) -> int | None:
    if text is None:
        return None
    for line in text.splitlines():
        if line.startswith("Total "):
            return _number(line.split()[1])
    return 0


def net_bytes(pid: int, interface: str) -> tuple[int, int] | None:
    """(TX, RX) bytes of ``interface`` in the network namespace of ``pid`` (its own side)."""
    text = _read(f"/proc/{int(pid)}/net/dev")
    for line in (text or "").splitlines()[2:]:
        ifname, _, counters = line.partition(":")
        if ifname.strip() == interface:
            values = counters.split()
            if len(values) >= 9 and values[0].isdigit() and values[8].isdigit():
                return int(values[8]), int(values[0])
    return None


def is_init(pid: int, name: str, dirs: dict[str, str] | None = None, lxc_path: str = "") -> bool:
    """``pid`` is still the init of the container ``name``: it is in the container's cgroup
    (:func:`container_dirs`, or ``dirs`` when the caller read them) and its parent is LXC's
    monitor process (``[lxc monitor] PATH NAME``, of ``lxc_path`` when given), which a pid
    reused by another process of the container would not have."""
    if not (dirs or container_dirs(pid, name)):
        return False
    stat = _read(f"/proc/{int(pid)}/stat")
    fields = (stat or "").rpartition(")")[2].split()
    if len(fields) < 2 or not fields[1].isascii() or not fields[1].isdigit():
        return False
    text = (_read_bytes(f"/proc/{int(fields[1])}/cmdline") or b"").rstrip(b"\0").decode("utf-8", "replace")
    if lxc_path:
        return text == f"[lxc monitor] {lxc_path} {name}"
    return text.startswith("[lxc monitor] ") and text.endswith(f" {name}")


def freezer_state(dirs: dict[str, str]) -> str | None:
    """The container's state as its freezer gives it (what ``lxc-info -s`` shows of a running
    container): FROZEN, FREEZING (v1, on its way) or RUNNING; None when it cannot be read."""
    if "freezer" in dirs:
        text = (_read(os.path.join(dirs["freezer"], "freezer.state")) or "").strip()
        return {"FROZEN": "FROZEN", "FREEZING": "FREEZING", "THAWED": "RUNNING"}.get(text)
    if UNIFIED in dirs:
        frozen = _keyed(_read(os.path.join(dirs[UNIFIED], "cgroup.events"))).get("frozen")
        return None if frozen is None else ("FROZEN" if frozen else "RUNNING")
    return None


def addresses(pid: int) -> list[str] | None:
    """The addresses ``lxc-info`` and ``lxc-ls`` show for the container whose init is ``pid``: read
    in its network namespace's ``/proc/PID/net`` files instead of a process that enters it.

    IPv4: the kernel's local routes (``fib_trie``: an address with "/32 host LOCAL"), except
    127.0.0.0/8 (LXC leaves out the interface ``lo``; an address put on ``lo`` outside 127/8 is
    the one case shown here and not by LXC). IPv6: ``if_inet6`` entries of global scope on any
    interface but ``lo``. None when the files cannot be read."""
    trie = _read(f"/proc/{int(pid)}/net/fib_trie")
    inet6 = _read(f"/proc/{int(pid)}/net/if_inet6")
    if trie is None:
        return None
    v4: list[str] = []
    last = ""
    for line in trie.splitlines():
        text = line.strip()
        if text.startswith("|-- "):
            last = text[4:]
        elif text == "/32 host LOCAL" and last and last not in v4 and not last.startswith("127."):
            v4.append(last)
    v6: list[str] = []
    for line in (inet6 or "").splitlines():
        fields = line.split()
        if len(fields) == 6 and fields[3] == "00" and fields[5] != "lo":
            try:
                address = ipaddress.IPv6Address(bytes.fromhex(fields[0])).compressed
            except ValueError:
                continue
            if address not in v6:
                v6.append(address)
    return ordered([*v4, *v6])


def ordered(ips: list[str]) -> list[str]:
    """Addresses in one order whoever read them (``lxc-info`` lists them per interface, in the
    order they were added; :func:`addresses` by value): IPv4 then IPv6, each by value; anything
    that does not parse last, as it came."""

    def key(text: str) -> tuple[int, bytes]:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            return (2, b"")
        return (address.version // 6, address.packed)

    return sorted(ips, key=key)


def usage(pid: int, name: str, interface: str = "eth0") -> dict[str, int] | None:
    """The figures ``lxc-info`` shows (see the module's table), or None when they cannot be read."""
    dirs = container_dirs(pid, name)
    if not dirs:
        return None
    figures: dict[str, int | None] = {}
    if "cpuacct" in dirs:
        figures["cpu_ns"] = _number(_read(os.path.join(dirs["cpuacct"], "cpuacct.usage")))
    elif UNIFIED in dirs:
        usec = _keyed(_read(os.path.join(dirs[UNIFIED], "cpu.stat"))).get("usage_usec")
        figures["cpu_ns"] = usec * 1000 if usec is not None else None
    if "blkio" in dirs:
        figures["blkio_bytes"] = _io_v1(_read(os.path.join(dirs["blkio"], "blkio.throttle.io_service_bytes")))
    elif UNIFIED in dirs:
        figures["blkio_bytes"] = _io_v2(_read(os.path.join(dirs[UNIFIED], "io.stat")))
    if "memory" in dirs:
        figures["memory_bytes"] = _number(_read(os.path.join(dirs["memory"], "memory.usage_in_bytes")))
        figures["kmem_bytes"] = _number(_read(os.path.join(dirs["memory"], "memory.kmem.usage_in_bytes")))
    elif UNIFIED in dirs:
        figures["memory_bytes"] = _number(_read(os.path.join(dirs[UNIFIED], "memory.current")))
    counted = net_bytes(pid, interface)
    if counted is not None:
        figures["tx_bytes"], figures["rx_bytes"] = counted
        figures["total_bytes"] = counted[0] + counted[1]
    out = {key: value for key, value in figures.items() if value is not None}
    if "cpu_ns" not in out or "memory_bytes" not in out:
        return None  # not the cgroup layout this module knows: the caller asks lxc-info
    return out


def cgroup_value(pid: int, name: str, key: str, dirs: dict[str, str] | None = None) -> str | None:
    """What ``lxc-cgroup -n NAME KEY`` prints for a running container, or None if unreadable.

    ``key`` is a cgroup file name already validated by the caller (``memory.limit_in_bytes``);
    its controller is the part before the first dot (v1), or it is read in the v2 directory.
    ``dirs``: the container's :func:`container_dirs`, when the caller read them for several keys."""
    if "/" in key or key.startswith("."):
        return None
    dirs = dirs or container_dirs(pid, name)
    if not dirs:
        return None
    controller = key.split(".", 1)[0]
    directory = dirs.get(controller) or dirs.get(UNIFIED)
    if directory is None:
        return None
    text = _read(os.path.join(directory, key))
    return text.strip() if text is not None else None
