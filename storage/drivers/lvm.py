"""LVM pools: ``pvcreate``/``vgcreate`` on a device, ``pvs``/``vgs``/``lvs`` parsed.

The agent reads LVM with ``--reportformat json --units b --nosuffix`` (exact bytes);
the human tables (``lvs`` as the seed chapter prints it) and ``lvdisplay`` are parsed too,
for output pasted from elsewhere and for tests with the chapter's real outputs.
This host kernel has no device-mapper: logical volumes cannot be created here, so the
LV commands are tested by the exact argv they would run.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from console.errors import Conflict, InvalidInput, ServiceError
from console.runner import CommandError, CommandResult, Runner
from storage.drivers.pool import Dependant, PoolType, Progress, Reading, register

if TYPE_CHECKING:
    from console.models import Host
    from storage.models import Pool

# The host prints "File descriptor N leaked on pvs invocation" for every fd Celery leaves open.
LVM_ENV = {"LVM_SUPPRESS_FD_WARNINGS": "1"}
_UNITS = {"b": 1, "s": 512, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}


def parse_lvm_size(value: str) -> int:
    """``75.00g``, ``<296.00m``, ``10.00 GiB``, ``310378496`` (with ``--units b --nosuffix``)."""
    text = value.strip().lstrip("<>").replace(" ", "")
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([bskmgtp])?(?:i?b)?", text, re.IGNORECASE)
    if not m:
        raise ValueError(f"not an LVM size: {value!r}")
    return int(float(m.group(1)) * _UNITS[(m.group(2) or "b").lower()])


@dataclass
class PhysicalVolume:
    name: str
    vg: str
    fmt: str
    attr: str
    size: int
    free: int


@dataclass
class VolumeGroup:
    name: str
    pv_count: int
    lv_count: int
    snap_count: int
    attr: str
    size: int
    free: int


@dataclass
class LogicalVolume:
    name: str
    vg: str
    attr: str
    size: int
    pool: str = ""
    origin: str = ""
    data_percent: float | None = None

    @property
    def is_snapshot(self) -> bool:
        return self.attr[:1] in ("s", "S")

    @property
    def is_origin(self) -> bool:
        return self.attr[:1] in ("o", "O")


@dataclass
class LvDisplay:
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return self.fields.get("LV Path", "")

    @property
    def name(self) -> str:
        return self.fields.get("LV Name", "")

    @property
    def vg(self) -> str:
        return self.fields.get("VG Name", "")

    @property
    def size(self) -> int:
        return parse_lvm_size(self.fields.get("LV Size", "0"))

    @property
    def open_count(self) -> int:
        return int(self.fields.get("# open", "0") or 0)


def _report(text: str, kind: str) -> list[dict]:
    data = json.loads(text)
    return [row for report in data.get("report", []) for row in report.get(kind, [])]


def parse_pvs_json(text: str) -> list[PhysicalVolume]:
    return [
        PhysicalVolume(
            r["pv_name"],
            r.get("vg_name", ""),
            r.get("pv_fmt", ""),
            r.get("pv_attr", ""),
            parse_lvm_size(r["pv_size"]),
            parse_lvm_size(r.get("pv_free") or "0"),
        )
        for r in _report(text, "pv")
    ]


def parse_vgs_json(text: str) -> list[VolumeGroup]:
    return [
        VolumeGroup(
            r["vg_name"],
            int(r.get("pv_count") or 0),
            int(r.get("lv_count") or 0),
            int(r.get("snap_count") or 0),
            r.get("vg_attr", ""),
            parse_lvm_size(r["vg_size"]),
            parse_lvm_size(r.get("vg_free") or "0"),
        )
        for r in _report(text, "vg")
    ]


def parse_lvs_json(text: str) -> list[LogicalVolume]:
    out = []
    for r in _report(text, "lv"):
        data = r.get("data_percent") or ""
        out.append(
            LogicalVolume(
                r["lv_name"],
                r.get("vg_name", ""),
                r.get("lv_attr", ""),
                parse_lvm_size(r["lv_size"]),
                r.get("pool_lv", ""),
                r.get("origin", ""),
                float(data) if data else None,
            )
        )
    return out


def _rows(text: str, first_header: str) -> list[list[str]]:
    lines = [ln.split() for ln in text.splitlines() if ln.strip()]
    return [ln for ln in lines if ln and ln[0] != first_header]


def parse_pvs_table(text: str) -> list[PhysicalVolume]:
    """``pvs``: ``PV VG Fmt Attr PSize PFree``; a PV outside any VG has an empty VG column."""
    out = []
    for cells in _rows(text, "PV"):
        if len(cells) == 5:
            cells.insert(1, "")
        if len(cells) < 6:
            continue
        name, vg, fmt, attr, size, free = cells[:6]
        out.append(PhysicalVolume(name, vg, fmt, attr, parse_lvm_size(size), parse_lvm_size(free)))
    return out


def parse_vgs_table(text: str) -> list[VolumeGroup]:
    """``vgs``: ``VG #PV #LV #SN Attr VSize VFree``."""
    out = []
    for cells in _rows(text, "VG"):
        if len(cells) < 7:
            continue
        name, pvs, lvs, sns, attr, size, free = cells[:7]
        out.append(
            VolumeGroup(name, int(pvs), int(lvs), int(sns), attr, parse_lvm_size(size), parse_lvm_size(free))
        )
    return out


def _is_number(text: str) -> bool:
    return re.fullmatch(r"\d+(?:\.\d+)?", text) is not None


def parse_lvs_table(text: str) -> list[LogicalVolume]:
    """``lvs``: ``LV VG Attr LSize Pool Origin Data% ...``.

    Empty columns vanish when the table is split on blanks (and the seed's copy has its
    padding collapsed), so the attribute decides: a snapshot (``s``) names its origin next,
    a thin volume (``V``) its pool; a number is the Data% column.
    """
    out = []
    for cells in _rows(text, "LV"):
        if len(cells) < 4:
            continue
        name, vg, attr, size, *rest = cells
        lv = LogicalVolume(name, vg, attr, parse_lvm_size(size))
        words = [c for c in rest if not _is_number(c)]
        numbers = [c for c in rest if _is_number(c)]
        if attr[:1] in ("V",) and words:
            lv.pool = words.pop(0)
        if words and (lv.is_snapshot or attr[:1] == "V"):
            lv.origin = words.pop(0)
        if numbers:
            lv.data_percent = float(numbers[0])
        out.append(lv)
    return out


_LVDISPLAY_KEYS = (
    "LV Path",
    "LV Name",
    "VG Name",
    "LV UUID",
    "LV Write Access",
    "LV Creation host, time",
    "LV snapshot status",
    "LV Status",
    "# open",
    "LV Size",
    "Current LE",
    "COW-table size",
    "COW-table LE",
    "Allocated to snapshot",
    "Snapshot chunk size",
    "Segments",
    "Allocation",
    "Read ahead sectors",
    "- currently set to",
    "Block device",
)


def parse_lvdisplay(text: str) -> list[LvDisplay]:
    """``lvdisplay``: one block per ``--- Logical volume ---``."""
    out: list[LvDisplay] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("--- Logical volume ---"):
            out.append(LvDisplay())
            continue
        if not out or not line:
            continue
        key = next((k for k in _LVDISPLAY_KEYS if line.startswith(k)), None)
        if key is None:
            key, _, value = _split2(line)
        else:
            value = line[len(key) :].strip()
        out[-1].fields[key] = value
    return out


def _split2(line: str) -> tuple[str, str, str]:
    parts = re.split(r"\s{2,}", line, maxsplit=1)
    return (parts[0], "", parts[1] if len(parts) > 1 else "")


@dataclass
class LvmDependants:
    """What must go before a volume group can be removed, in a safe order."""

    snapshots: list[str]
    volumes: list[str]

    @property
    def order(self) -> list[str]:
        return [f"lvremove {name}" for name in [*self.snapshots, *self.volumes]]


def vg_dependants(vg: str, lvs: list[LogicalVolume]) -> LvmDependants:
    """Snapshots first (they need their origin), then the other logical volumes of ``vg``."""
    mine = [lv for lv in lvs if lv.vg == vg]
    return LvmDependants(
        snapshots=[f"{vg}/{lv.name}" for lv in mine if lv.is_snapshot],
        volumes=[f"{vg}/{lv.name}" for lv in mine if not lv.is_snapshot],
    )


def as_rows(items: list) -> list[dict]:
    return [asdict(i) for i in items]


class LvmDriver:
    """Physical volumes, volume groups and logical volumes through the ``lvm`` tools."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def _run(self, argv: list[str], **kwargs) -> CommandResult:
        return self.runner.run(argv, env=LVM_ENV, **kwargs)

    def pvcreate(self, device: str) -> None:
        self._run(["pvcreate", device], error_message=f"pvcreate failed on {device}")

    def pvremove(self, device: str) -> None:
        self._run(["pvremove", device], error_message=f"pvremove failed on {device}")

    def vgcreate(self, vg: str, devices: list[str]) -> None:
        self._run(["vgcreate", vg, *devices], error_message=f"vgcreate could not create {vg}")

    def vgremove(self, vg: str) -> None:
        # Never -f: a VG that still has logical volumes must be refused, not emptied.
        self._run(["vgremove", vg], error_message=f"vgremove could not remove {vg}")

    def lvcreate_argv(self, vg: str, name: str, size_bytes: int) -> list[str]:
        # A new volume may land on the extents of a removed one and find its old filesystem
        # signature; lvcreate then asks "Wipe it? [y/n]" and, with stdin closed, gives up. The
        # volume is new: wipe (as LXC's own lvcreate does).
        return ["lvcreate", "-W", "y", "--yes", "-L", f"{size_bytes}b", "-n", name, vg]

    def lvcreate(self, vg: str, name: str, size_bytes: int) -> None:
        self._run(self.lvcreate_argv(vg, name, size_bytes), error_message=f"lvcreate could not create {name}")

    def snapshot_argv(self, vg: str, origin: str, name: str, size_bytes: int) -> list[str]:
        return ["lvcreate", "-s", "-L", f"{size_bytes}b", "-n", name, f"{vg}/{origin}"]

    def lvremove_argv(self, vg: str, name: str) -> list[str]:
        return ["lvremove", "-y", f"{vg}/{name}"]

    def lvremove(self, vg: str, name: str) -> None:
        """Remove one logical volume, never an origin with snapshots (``lvremove -y`` would take the
        snapshots with it): those are listed, to be removed first."""
        snapshots = sorted(lv.name for lv in self.lvs(vg) if lv.origin == name)
        if snapshots:
            raise CommandError(
                f"{vg}/{name} cannot be removed: these snapshots depend on it: {', '.join(snapshots)}; "
                "remove them first",
                argv=self.lvremove_argv(vg, name),
            )
        self._run(self.lvremove_argv(vg, name), error_message=f"lvremove could not remove {vg}/{name}")

    def pvs(self) -> list[PhysicalVolume]:
        argv = [
            "pvs",
            "--reportformat",
            "json",
            "--units",
            "b",
            "--nosuffix",
            "-o",
            "pv_name,vg_name,pv_fmt,pv_attr,pv_size,pv_free",
        ]
        return parse_pvs_json(self._run(argv, record=False, timeout=60).stdout)

    def vgs(self) -> list[VolumeGroup]:
        argv = [
            "vgs",
            "--reportformat",
            "json",
            "--units",
            "b",
            "--nosuffix",
            "-o",
            "vg_name,pv_count,lv_count,snap_count,vg_attr,vg_size,vg_free",
        ]
        return parse_vgs_json(self._run(argv, record=False, timeout=60).stdout)

    def lvs(self, vg: str | None = None) -> list[LogicalVolume]:
        argv = [
            "lvs",
            "--reportformat",
            "json",
            "--units",
            "b",
            "--nosuffix",
            "-o",
            "lv_name,vg_name,lv_attr,lv_size,pool_lv,origin,data_percent",
        ]
        result = self._run([*argv, *([vg] if vg else [])], record=False, timeout=60, check=False)
        if result.returncode != 0:
            raise CommandError(f"lvs failed: {result.stderr.strip()}", argv=result.argv, stderr=result.stderr)
        return parse_lvs_json(result.stdout)


_FSSIZE_RE = re.compile(r"([1-9][0-9]{0,5})([MG])")


@register
class LvmPool(PoolType):
    """A volume group on a device; containers get logical volumes (``lxc-create -B lvm``)."""

    kind = "lvm"
    noun = "LVM pool"
    wiped_by = "pvcreate"
    signature = "LVM2_member"

    def check_host(self, host: Host) -> None:
        if not host.capabilities.get("lvm", {}).get("available", True):
            raise InvalidInput(f"LVM tools are not installed on host {host.slug}", field="kind")

    def validate(self, host, inventory, *, name, device, vg_name, path, lxc_path):
        from storage.models import Pool
        from storage.validators import validate_vg_name

        vg = validate_vg_name(vg_name or "lxc")
        taken = inventory.volume_groups if inventory is not None else []
        if vg in taken or Pool.objects.filter(host=host, vg_name=vg).exists():
            raise Conflict(f"a volume group named {vg!r} already exists on host {host.slug}", field="vg_name")
        return {"lxc_path": lxc_path, "vg_name": vg}

    def blockers(self, pool: Pool, owned_rootfs: set[str]) -> list[Dependant]:
        vg = pool.vg_name
        lvs = [
            lv
            for lv in pool.details.get("lvs", [])
            if lv.get("vg") == vg and f"lvm:/dev/{vg}/{lv.get('name')}" not in owned_rootfs
        ]
        out = []
        for lv in sorted(lvs, key=lambda lv: lv.get("attr", "")[:1] not in ("s", "S")):
            kind = "snapshot" if lv.get("attr", "")[:1] in ("s", "S") else "logical volume"
            out.append(Dependant(kind, f"{vg}/{lv['name']}", f"lvremove {vg}/{lv['name']}"))
        return out

    def container_store(self, pool: Pool, host: Host, *, fssize: str | None) -> dict[str, str]:
        caps = host.capabilities or {}
        if caps and not caps.get("lvm", {}).get("device_mapper"):
            raise InvalidInput(
                f"host {host.slug} has no device-mapper: LVM logical volumes (and so -B lvm containers) "
                "cannot be created there",
                field="backing_store",
            )
        # Spaces only: a newline or another control character is refused, not stripped.
        size = (fssize or "1G").strip(" ").upper()
        m = _FSSIZE_RE.fullmatch(size)
        if not m or (m.group(2) == "M" and int(m.group(1)) < 64):
            raise InvalidInput("the logical volume size is 64M or more, like 512M or 10G", field="fssize")
        return {"vgname": pool.vg_name or "lxc", "fssize": size}

    def lxc_create_args(self, *, vgname: str | None, fssize: str | None, zfsroot: str | None) -> list[str]:
        if not (vgname and re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,126}", vgname)):
            raise ValueError(f"invalid volume group name {vgname!r}")
        if not (fssize and _FSSIZE_RE.fullmatch(fssize)):
            raise ValueError(f"invalid logical volume size {fssize!r}")
        return ["-B", "lvm", "--vgname", vgname, "--fssize", fssize, "--fstype", "ext4"]

    def create(self, params: dict[str, Any], runner: Runner, progress: Progress) -> dict[str, str]:
        from storage.drivers.dir import DirDriver
        from storage.drivers.loop import wipe_signatures

        device, vg = params["device"], params["vg_name"]
        lvm = LvmDriver(runner)
        if [g for g in lvm.vgs() if g.name == vg]:
            raise ServiceError(f"a volume group named {vg!r} already exists; nothing was done")
        if params.get("wipe"):
            wipe_signatures(runner, device)
        progress(20, f"pvcreate {device}")
        lvm.pvcreate(device)
        progress(50, f"vgcreate {vg} {device}")
        try:
            lvm.vgcreate(vg, [device])
        except CommandError:
            lvm.pvremove(device)
            raise
        DirDriver(runner).create(params["lxc_path"])
        return {"source": device, "vg_name": vg}

    def read(self, pool: Pool, runner: Runner, details: dict) -> Reading:
        lvm = LvmDriver(runner)
        vgs = [vg for vg in lvm.vgs() if vg.name == pool.vg_name]
        details["pvs"] = [asdict(pv) for pv in lvm.pvs() if pv.vg == pool.vg_name]
        details["lvs"] = [asdict(lv) for lv in lvm.lvs(pool.vg_name)] if vgs else []
        if not vgs:
            return Reading(health=f"volume group {pool.vg_name} not found")
        details["vgs"] = [asdict(vgs[0])]
        return Reading(vgs[0].size, vgs[0].size - vgs[0].free)

    def destroy(self, pool: Pool, runner: Runner, progress: Progress) -> None:
        from storage.drivers.dir import DirDriver

        lvm = LvmDriver(runner)
        deps = vg_dependants(pool.vg_name, lvm.lvs(pool.vg_name))
        if deps.order:
            raise ServiceError(
                f"volume group {pool.vg_name} still has logical volumes; safe order: "
                f"{'; '.join(deps.order)}. Nothing was done"
            )
        progress(30, f"vgremove {pool.vg_name}")
        lvm.vgremove(pool.vg_name)
        progress(60, f"pvremove {pool.source}")
        lvm.pvremove(pool.source)
        DirDriver(runner).remove_if_empty(pool.lxc_path)
