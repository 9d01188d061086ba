"""libvirt-LXC domain XML: validated values in, XML built and read with a real XML library.

Nothing here talks to libvirt: the web process validates forms and pasted XML with it, the agent
builds what it defines with it. Untrusted XML is parsed by ``console.safe_xml.safe_parse`` (no DTDs,
no entities, no external references, and only after a size check).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # building only; untrusted text goes through safe_parse
from collections.abc import Callable
from dataclasses import dataclass, field

from console.errors import InvalidInput
from console.identifiers import (
    generate_mac,
    validate_container_name,
    validate_mac,
)
from console.paths import canonical_path
from console.safe_xml import safe_parse, to_text

EMULATOR = "/usr/lib/libvirt/libvirt_lxc"
MEMORY_MIB_MIN, MEMORY_MIB_MAX = 16, 65536
_TARGET_RE = re.compile(r"vd[b-z]")


# ---------------------------------------------------------------- validation


def validate_domain_name(value: object) -> str:
    return validate_container_name(value)


def _ascii_int(value: object) -> int:
    """A whole number written in ASCII digits (``int()`` also reads other scripts' digits)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip(" ")
    if not (text.isascii() and text.isdigit()):
        raise ValueError(text)
    return int(text)


def validate_memory_mib(value: object) -> int:
    try:
        mib = _ascii_int(value)
    except (TypeError, ValueError):
        raise InvalidInput("memory is a whole number of MiB", field="memory_mib") from None
    if not MEMORY_MIB_MIN <= mib <= MEMORY_MIB_MAX:
        raise InvalidInput(
            f"memory must be between {MEMORY_MIB_MIN} and {MEMORY_MIB_MAX} MiB (got {mib})",
            field="memory_mib",
        )
    return mib


def validate_vcpus(value: object, host_cpus: int | None) -> int:
    try:
        count = _ascii_int(value)
    except (TypeError, ValueError):
        raise InvalidInput("vCPUs is a whole number", field="vcpus") from None
    top = host_cpus or 1
    if not 1 <= count <= top:
        raise InvalidInput(f"vCPUs must be between 1 and {top}, the host's CPUs (got {count})", field="vcpus")
    return count


def validate_abs_path(value: object, field_name: str, what: str) -> str:
    """A clean absolute path (see :func:`console.paths.canonical_path`); ``..`` is refused here,
    not folded, as the define form always said."""
    if isinstance(value, str) and ".." in value.split("/"):
        raise InvalidInput(f"{what} must not contain '..'", field=field_name)
    return canonical_path(value, field=field_name, what=what)


def check_domain_root(xml: str, *, field: str = "xml", on_host: bool = False) -> str:
    """The host directory a domain's root filesystem (``<filesystem>`` with target ``/``) is:
    a clean absolute path, never /, /proc, /sys or /dev. ``on_host`` (the agent): symbolic links
    resolved and the result checked again (``/proc/self/root`` is the host's /). Other
    filesystems are left alone: converted containers bind host directories such as /lib or
    /sys/kernel/security read-only, as LXC's own templates do. "" when there is no root."""
    from console.paths import resolve_on_host

    for fs in safe_parse(xml, what="domain XML", field_name=field).iterfind("devices/filesystem"):
        source, target = fs.find("source"), fs.find("target")
        if target is None or target.get("dir") != "/" or source is None or source.get("dir") is None:
            continue
        check = resolve_on_host if on_host else canonical_path
        return check(
            source.get("dir") or "", field=field, what="the root filesystem directory", directory=True
        )
    return ""


def validate_target(value: object) -> str:
    if not isinstance(value, str) or not _TARGET_RE.fullmatch(value):
        raise InvalidInput(
            "the target must be vdb to vdz (vda is left to the root filesystem)", field="target"
        )
    return value


def validate_block_device_path(value: object) -> str:
    path = validate_abs_path(value, "device", "the device")
    if not path.startswith("/dev/"):
        raise InvalidInput("the device must be a block device under /dev (e.g. /dev/loop3)", field="device")
    return path


# ---------------------------------------------------------------- building


@dataclass(frozen=True)
class DomainSpec:
    name: str
    memory_mib: int
    vcpus: int
    init: str
    rootfs: str
    network: str = ""  # a libvirt network name, or
    bridge: str = ""  # a host bridge name
    mac: str = ""


def build_domain_xml(spec: DomainSpec) -> str:
    """The ``<domain type='lxc'>`` document for a form-defined container."""
    dom = ET.Element("domain", type="lxc")
    ET.SubElement(dom, "name").text = spec.name
    ET.SubElement(dom, "memory", unit="MiB").text = str(spec.memory_mib)
    ET.SubElement(dom, "vcpu").text = str(spec.vcpus)
    os_el = ET.SubElement(dom, "os")
    ET.SubElement(os_el, "type").text = "exe"
    ET.SubElement(os_el, "init").text = spec.init
    ET.SubElement(dom, "on_poweroff").text = "destroy"
    ET.SubElement(dom, "on_reboot").text = "restart"
    ET.SubElement(dom, "on_crash").text = "destroy"
    devices = ET.SubElement(dom, "devices")
    ET.SubElement(devices, "emulator").text = EMULATOR
    fs = ET.SubElement(devices, "filesystem", type="mount")
    ET.SubElement(fs, "source", dir=spec.rootfs)
    ET.SubElement(fs, "target", dir="/")
    if spec.network or spec.bridge:
        kind = "network" if spec.network else "bridge"
        iface = ET.SubElement(devices, "interface", type=kind)
        ET.SubElement(iface, "mac", address=spec.mac)
        ET.SubElement(iface, "source", {kind: spec.network or spec.bridge})
    add_console(dom)
    return to_text(dom)


def add_console(dom: ET.Element) -> bool:
    """Give the domain a ``<console type='pty'>`` if it has none; True when one was added."""
    devices = dom.find("devices")
    if devices is None:
        devices = ET.SubElement(dom, "devices")
    if devices.find("console") is not None:
        return False
    console = ET.SubElement(devices, "console", type="pty")
    ET.SubElement(console, "target", type="lxc", port="0")
    return True


def disk_xml(device: str, target: str) -> str:
    """``<disk type='block'>`` for a host block device seen as ``target`` in the container."""
    disk = ET.Element("disk", type="block", device="disk")
    ET.SubElement(disk, "source", dev=device)
    ET.SubElement(disk, "target", dev=target, bus="virtio")
    return to_text(disk)


# ---------------------------------------------------------------- reading


def validate_domain_document(text: object) -> tuple[str, ET.Element]:
    """Pasted domain XML: well-formed, safe, ``type='lxc'``, a valid name. Returns (name, root)."""
    root = safe_parse(text, what="domain XML")
    if root.tag != "domain":
        raise InvalidInput(f"the document's root element is {root.tag!r}, not 'domain'", field="xml")
    if root.get("type") != "lxc":
        raise InvalidInput(
            f"the domain type is {root.get('type')!r}; only type='lxc' domains are accepted", field="xml"
        )
    name = validate_domain_name((root.findtext("name") or "").strip())
    for source in root.iterfind("devices/filesystem/source"):
        path = source.get("dir")
        if path is not None and not path.startswith("/"):
            # libvirt accepts it and the start fails ("Failed to access 'mqueue'").
            raise InvalidInput(
                f"the filesystem source directory {path!r} is not an absolute path: libvirt-LXC mounts "
                "host directories only (remove that filesystem, or give the host directory's full path)",
                field="xml",
            )
    for iface in root.iterfind("devices/interface"):
        mac = iface.find("mac")
        if mac is not None and mac.get("address"):
            validate_mac(mac.get("address"))
    return name, root


@dataclass
class DomainInfo:
    """What the pages show from a domain's XML."""

    name: str = ""
    uuid: str = ""
    memory_kib: int | None = None
    vcpus: int | None = None
    init: str = ""
    rootfs: str = ""
    interfaces: list[dict[str, str]] = field(default_factory=list)
    disks: list[dict[str, str]] = field(default_factory=list)
    consoles: int = 0
    filesystems: list[dict[str, str]] = field(default_factory=list)


_UNIT_KIB = {"b": 1 / 1024, "bytes": 1 / 1024, "k": 1, "kib": 1, "kb": 1000 / 1024, "m": 1024, "mib": 1024,
             "mb": 1000**2 / 1024, "g": 1024**2, "gib": 1024**2, "gb": 1000**3 / 1024}  # fmt: skip


def parse_domain_xml(text: str) -> DomainInfo:
    """Read a domain's XML (as libvirt's dumpxml returns it, or as the inventory stored it)."""
    info = DomainInfo()
    if not text:
        return info
    try:
        root = safe_parse(text, what="domain XML")
    except InvalidInput:
        return info
    info.name = (root.findtext("name") or "").strip()
    info.uuid = (root.findtext("uuid") or "").strip()
    memory = root.find("memory")
    memory_text = (memory.text or "").strip() if memory is not None else ""
    if memory is not None and re.fullmatch(r"[0-9]+", memory_text):
        factor = _UNIT_KIB.get((memory.get("unit") or "KiB").lower(), 1)
        info.memory_kib = int(int(memory_text) * factor)
    vcpu = (root.findtext("vcpu") or "").strip()
    info.vcpus = int(vcpu) if re.fullmatch(r"[0-9]+", vcpu) else None
    info.init = (root.findtext("os/init") or "").strip()
    for fs in root.iterfind("devices/filesystem"):
        source, target = fs.find("source"), fs.find("target")
        src = "" if source is None else (source.get("dir") or source.get("file") or source.get("usage") or "")
        dst = "" if target is None else target.get("dir", "")
        info.filesystems.append({"type": fs.get("type", ""), "source": src, "target": dst})
        if dst == "/" and not info.rootfs:
            info.rootfs = src
    for iface in root.iterfind("devices/interface"):
        source, mac, target = iface.find("source"), iface.find("mac"), iface.find("target")
        kind = iface.get("type", "")
        info.interfaces.append(
            {
                "type": kind,
                "source": "" if source is None else (source.get("network") or source.get("bridge") or ""),
                "mac": "" if mac is None else mac.get("address", ""),
                "dev": "" if target is None else target.get("dev", ""),
            }
        )
    for disk in root.iterfind("devices/disk"):
        source, target = disk.find("source"), disk.find("target")
        info.disks.append(
            {
                "type": disk.get("type", ""),
                "source": "" if source is None else (source.get("dev") or source.get("file") or ""),
                "target": "" if target is None else target.get("dev", ""),
                "bus": "" if target is None else target.get("bus", ""),
            }
        )
    info.consoles = len(root.findall("devices/console"))
    return info


def macs_in(text: str) -> set[str]:
    return {i["mac"].lower() for i in parse_domain_xml(text).interfaces if i["mac"]}


# ---------------------------------------------------------------- conversion from native LXC

# Keys libvirt's lxc-tools converter reads (src/lxc/lxc_native.c); the rest are dropped silently.
CONVERTED_KEYS = (
    "lxc.rootfs",
    "lxc.rootfs.path",
    "lxc.mount",
    "lxc.mount.fstab",
    "lxc.mount.entry",
    "lxc.utsname",
    "lxc.uts.name",
    "lxc.arch",
    "lxc.cap.drop",
    "lxc.id_map",
    "lxc.idmap",
    "lxc.console",
    "lxc.console.path",
    "lxc.include",
)
CONVERTED_PREFIXES = ("lxc.network.", "lxc.net.", "lxc.cgroup.")


@dataclass
class Conversion:
    """The result of converting a native config: XML to review, notes on what changed or was lost."""

    xml: str = ""
    not_converted: list[str] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)
    error: str = ""
    hint: str = ""


def unconverted_lines(config_text: str) -> list[str]:
    """Config lines libvirt's converter does not read (so the domain will not have them)."""
    from containers.lxc_config import LxcConfig

    return [
        line.raw.strip()
        for line in LxcConfig(config_text).lines
        if line.key is not None
        and line.key not in CONVERTED_KEYS
        and not line.key.startswith(CONVERTED_PREFIXES)
    ]


# The keys libvirt's config reader (virconf) parses: a letter or '_', then letters, digits, '_' and
# '.'. A key with a '-' (a hook's lxc.hook.pre-start) made it refuse the whole file with
# "configuration file syntax error: memory conf:N: expecting an assignment".
_LIBVIRT_READABLE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


def readable_by_libvirt(config_text: str) -> str:
    """The config without the lines libvirt's reader cannot parse; each is one libvirt's converter
    does not read anyway (:func:`unconverted_lines` lists it), so the domain loses nothing."""
    from containers.lxc_config import LxcConfig

    return "".join(
        line.raw + "\n"
        for line in LxcConfig(config_text).lines
        if line.key is None or _LIBVIRT_READABLE_KEY.fullmatch(line.key)
    )


def hint_for_conversion_error(message: str) -> str:
    """What to change in the native config when libvirt refuses it."""
    lowered = message.lower()
    if "tmpfs size" in lowered:
        return (
            "libvirt needs a size on every tmpfs mount entry: edit the container's configuration and add "
            "size= to the options of the tmpfs lxc.mount.entry line, for example "
            "'lxc.mount.entry = shm dev/shm tmpfs defaults,size=64m,create=dir 0 0', then convert again."
        )
    if "rootfs" in lowered:
        return "the configuration needs an lxc.rootfs.path line naming the root filesystem directory."
    if "network" in lowered or "net" in lowered:
        return (
            "check the lxc.net.* lines: libvirt converts veth with a link bridge, macvlan, vlan, phys, none."
        )
    return "edit the container's configuration so that libvirt can read it, then convert again."


def fix_converted(
    xml_text: str, *, add_console_device: bool, name: str = "", exists: Callable[[str], bool] | None = None
) -> tuple[str, list[str]]:
    """Repair what the converter leaves unusable: ``dir:`` rootfs prefixes, mounts libvirt cannot
    make (a relative source, a host directory that ``exists`` says is missing), all-zero MACs,
    no console. Returns the XML and one sentence per change, for the review."""
    root = safe_parse(xml_text, what="converted XML")
    fixes: list[str] = []
    if name and root.findtext("name") != name:
        name_el = root.find("name")
        if name_el is None:
            name_el = ET.SubElement(root, "name")
        fixes.append(f"named the domain {name!r}")
        name_el.text = name
    for devices in root.iterfind("devices"):
        for fs in list(devices.iterfind("filesystem")):
            source = fs.find("source")
            src = source.get("dir") if source is not None else None
            if source is None or src is None:
                continue  # a tmpfs (type='ram') has no directory
            target_el = fs.find("target")
            where = target_el.get("dir", "?") if target_el is not None else "?"
            if src.startswith("dir:"):
                src = src.removeprefix("dir:")
                source.set("dir", src)
                fixes.append(f"removed the LXC backing-store prefix from 'dir:{src}'")
            if not src.startswith("/"):
                # LXC mounts a filesystem type there (lxc.mount.entry = mqueue dev/mqueue mqueue ...);
                # the converter makes it a bind mount of a relative path, and the start fails with
                # "Failed to access 'mqueue'". libvirt-LXC sets up the container's /dev itself.
                devices.remove(fs)
                fixes.append(
                    f"removed the mount of {src!r} on {where}: libvirt-LXC bind-mounts host directories "
                    f"only, and {src!r} (a filesystem type in the LXC config) is not one; the domain "
                    "would not start"
                )
            elif exists is not None and where != "/" and not exists(src):
                devices.remove(fs)
                fixes.append(f"removed the bind mount of {src} on {where}: {src} does not exist on this host")
    for mac in root.iterfind("devices/interface/mac"):
        if mac.get("address", "").lower() in ("", "00:00:00:00:00:00"):
            new = generate_mac()
            mac.set("address", new)
            fixes.append(f"gave the interface the MAC address {new} (the config had none)")
    uuid = root.find("uuid")
    if uuid is not None:
        root.remove(uuid)  # a fresh one is generated when the domain is defined
    if add_console_device and add_console(root):
        fixes.append("added a console device (<console type='pty'>)")
    return to_text(root), fixes
